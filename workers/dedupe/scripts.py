"""The index's Lua scripts: each runs in Redis as one atomic step and one round trip.

A record's meta value (``Entry.pack``) is ``received|person|campaign|duplicate_of|
reference|customers``, a newline, then the signature; the scripts read only its customers.
"""

from __future__ import annotations

# KEYS: the record's decision, then customer lists, then buckets.
# ARGV: oldest score in the window, number of customer lists, newest to read per customer
#       list, per bucket, most candidates, meta key prefix.
# Returns {'done', decision fields} or {'found', candidates}: the candidates in one string,
# each a 2-byte length and its id, a 4-byte length and its meta (big-endian), since one
# string is parsed much faster than dozens of replies.
LOOKUP = """
local done = redis.call('HGETALL', KEYS[1])
if #done > 0 then return {'done', done} end
local customers, most = tonumber(ARGV[2]), tonumber(ARGV[5])
local seen, ids = {}, {}
for i = 2, #KEYS do
  local limit = ARGV[4]
  if i - 1 <= customers then limit = ARGV[3] end
  local found = redis.call('ZREVRANGEBYSCORE', KEYS[i], '+inf', ARGV[1], 'LIMIT', 0, limit)
  for _, id in ipairs(found) do
    if not seen[id] then
      seen[id] = true
      table.insert(ids, id)
    end
  end
end
-- The first `most` of them, in that order, whose details are still kept: read with one
-- MGET for as many as are still wanted, until enough are found or none are left.
local out, count, at = {}, 0, 1
while count < most and at <= #ids do
  local batch, keys = {}, {}
  for j = at, math.min(#ids, at + most - count - 1) do
    table.insert(batch, ids[j])
    table.insert(keys, ARGV[6] .. ids[j])
  end
  at = at + #batch
  local metas = redis.call('MGET', unpack(keys))
  for j, id in ipairs(batch) do
    local meta = metas[j]
    if meta then
      count = count + 1
      table.insert(out, struct.pack('>I2', #id) .. id .. struct.pack('>I4', #meta) .. meta)
    end
  end
end
return {'found', table.concat(out)}
"""

# KEYS: decision, meta, reference, campaign, campaign's first members, meta of the
#       campaign's first record, buckets..., customer lists...
# ARGV: id, decision, score, window ms, oldest score kept, reference ttl ms, number of
#       buckets, number of customer lists, campaign threshold, customer list size, meta,
#       customers (joined), campaign, then the identities counted in the campaign.
# Returns the stored decision fields: decision, count (customers in the campaign), earlier.
REGISTER = """
local done = redis.call('HGETALL', KEYS[1])
if #done > 0 then return done end
local id, score, window = ARGV[1], ARGV[3], tonumber(ARGV[4])
local buckets, lists, keep = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[10])
local campaign = ARGV[13]
for i = 7, 6 + buckets + lists do
  redis.call('ZADD', KEYS[i], score, id)
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. ARGV[5])
  if i > 6 + buckets then redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -1 - keep) end
  redis.call('PEXPIRE', KEYS[i], window)
end
if buckets + lists > 0 then redis.call('SET', KEYS[2], ARGV[11], 'PX', window) end
redis.call('HSET', KEYS[3], 'id', id, 'c', ARGV[12])
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[6]))
local count, earlier = 0, ''
if campaign ~= '' and campaign ~= id then
  if redis.call('EXISTS', KEYS[4]) == 0 then
    local meta = redis.call('GET', KEYS[6])
    if meta then
      local first = string.match(string.match(meta, '^[^\\n]*'), '[^|]*$')
      if first == '' then first = 'record:' .. campaign end
      for c in string.gmatch(first, '[^,]+') do redis.call('HSET', KEYS[4], 'c:' .. c, campaign) end
      redis.call('HSET', KEYS[4], 'n', 1)
      redis.call('RPUSH', KEYS[5], campaign)
    end
  end
  local known = false
  for i = 14, #ARGV do
    if redis.call('HEXISTS', KEYS[4], 'c:' .. ARGV[i]) == 1 then known = true end
  end
  if known then
    count = tonumber(redis.call('HGET', KEYS[4], 'n') or '0')
  else
    count = redis.call('HINCRBY', KEYS[4], 'n', 1)
    for i = 14, #ARGV do redis.call('HSET', KEYS[4], 'c:' .. ARGV[i], id) end
    local threshold = tonumber(ARGV[9])
    if count == threshold then
      earlier = table.concat(redis.call('LRANGE', KEYS[5], 0, -1), ',')
    end
    if count < threshold then redis.call('RPUSH', KEYS[5], id) end
  end
  redis.call('PEXPIRE', KEYS[4], window)
  redis.call('PEXPIRE', KEYS[5], window)
end
redis.call('HSET', KEYS[1], 'decision', ARGV[2], 'count', count, 'earlier', earlier)
redis.call('PEXPIRE', KEYS[1], window)
return {'decision', ARGV[2], 'count', tostring(count), 'earlier', earlier}
"""

# KEYS: for each record, its meta key then its buckets and customer lists.
# ARGV: window ms, then for each record: id, score, number of its index keys, meta.
BULK = """
local k, a = 1, 2
while a <= #ARGV do
  local id, score, n = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  redis.call('SET', KEYS[k], ARGV[a + 3], 'PX', ARGV[1])
  for i = k + 1, k + n do
    redis.call('ZADD', KEYS[i], score, id)
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  end
  k, a = k + n + 1, a + 4
end
return 1
"""
