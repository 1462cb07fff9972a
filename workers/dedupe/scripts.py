"""The index's Lua scripts: each runs in Redis as one atomic step and one round trip.

A record's meta value (``Entry.pack``) is ``received|person|campaign|duplicate_of|
reference|customers``, a newline, then the signature; the scripts read its customers and,
to tell whether a candidate is similar enough to matter, its signature.

The scripts share two functions (``_GATHER`` and ``_REGISTER``), so that what ``LOOKUP``
finds and what ``REGISTER`` writes is exactly what ``SETTLE`` finds and writes.
"""

from __future__ import annotations

# gather(lists, customer_lists, since, per_customer, per_bucket, most, meta_prefix):
# the ids in the customer lists (the newest `per_customer` of each) then in the buckets
# (the newest `per_bucket`), each once, scored at or after `since`; of them the first
# `most`, in that order, whose details are still kept, with those details. Read with one
# MGET for as many as are still wanted, until enough are found or none are left.
_GATHER = """
local function gather(lists, customer_lists, since, per_customer, per_bucket, most, prefix)
  local seen, ids = {}, {}
  for i, key in ipairs(lists) do
    local limit = per_bucket
    if i <= customer_lists then limit = per_customer end
    local found = redis.call('ZREVRANGEBYSCORE', key, '+inf', since, 'LIMIT', 0, limit)
    for _, id in ipairs(found) do
      if not seen[id] then
        seen[id] = true
        table.insert(ids, id)
      end
    end
  end
  local out_ids, out_metas, at = {}, {}, 1
  while #out_ids < most and at <= #ids do
    local batch, keys = {}, {}
    for j = at, math.min(#ids, at + most - #out_ids - 1) do
      table.insert(batch, ids[j])
      table.insert(keys, prefix .. ids[j])
    end
    at = at + #batch
    local metas = redis.call('MGET', unpack(keys))
    for j, id in ipairs(batch) do
      if metas[j] then
        table.insert(out_ids, id)
        table.insert(out_metas, metas[j])
      end
    end
  end
  return out_ids, out_metas
end

-- The candidates in one string, each a 2-byte length and its id, a 4-byte length and its
-- meta (big-endian), since one string is parsed much faster than dozens of replies.
local function packed(ids, metas)
  local out = {}
  for j, id in ipairs(ids) do
    local meta = metas[j]
    table.insert(out, struct.pack('>I2', #id) .. id .. struct.pack('>I4', #meta) .. meta)
  end
  return table.concat(out)
end
"""

# register(decision) with KEYS and ARGV as REGISTER describes them: index the record and
# keep its decision; returns the stored decision fields (decision, count, earlier).
_REGISTER = """
local function register(decision)
  local id, score, window = ARGV[1], ARGV[3], tonumber(ARGV[4])
  local buckets, lists = tonumber(ARGV[7]), tonumber(ARGV[8])
  local campaign, identities = ARGV[13], tonumber(ARGV[14])
  -- Each list keeps its newest records (by rank: no older one is ever read), so the
  -- ranks from 0 to `last` are removed; buckets and customer lists keep different counts.
  local last = -1 - tonumber(ARGV[5])
  for i = 7, 6 + buckets + lists do
    if i == 7 + buckets then last = -1 - tonumber(ARGV[10]) end
    redis.call('ZADD', KEYS[i], score, id)
    redis.call('ZREMRANGEBYRANK', KEYS[i], 0, last)
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
        for c in string.gmatch(first, '[^,]+') do
          redis.call('HSET', KEYS[4], 'c:' .. c, campaign)
        end
        redis.call('HSET', KEYS[4], 'n', 1)
        redis.call('RPUSH', KEYS[5], campaign)
      end
    end
    local known = false
    for i = 15, 14 + identities do
      if redis.call('HEXISTS', KEYS[4], 'c:' .. ARGV[i]) == 1 then known = true end
    end
    if known then
      count = tonumber(redis.call('HGET', KEYS[4], 'n') or '0')
    else
      count = redis.call('HINCRBY', KEYS[4], 'n', 1)
      for i = 15, 14 + identities do redis.call('HSET', KEYS[4], 'c:' .. ARGV[i], id) end
      local threshold = tonumber(ARGV[9])
      if count == threshold then
        earlier = table.concat(redis.call('LRANGE', KEYS[5], 0, -1), ',')
      end
      if count < threshold then redis.call('RPUSH', KEYS[5], id) end
    end
    redis.call('PEXPIRE', KEYS[4], window)
    redis.call('PEXPIRE', KEYS[5], window)
  end
  redis.call('HSET', KEYS[1], 'decision', decision, 'count', count, 'earlier', earlier)
  redis.call('PEXPIRE', KEYS[1], window)
  return {'decision', decision, 'count', tostring(count), 'earlier', earlier}
end
"""

# KEYS: the record's decision, then customer lists, then buckets.
# ARGV: oldest score in the window, number of customer lists, newest to read per customer
#       list, per bucket, most candidates, meta key prefix.
# Returns {'done', decision fields} or {'found', candidates packed in one string}.
LOOKUP = (
    _GATHER
    + """
local done = redis.call('HGETALL', KEYS[1])
if #done > 0 then return {'done', done} end
local lists = {}
for i = 2, #KEYS do table.insert(lists, KEYS[i]) end
local ids, metas = gather(lists, tonumber(ARGV[2]), ARGV[1], ARGV[3], ARGV[4],
  tonumber(ARGV[5]), ARGV[6])
return {'found', packed(ids, metas)}
"""
)

# KEYS: decision, meta, reference, campaign, campaign's first members, meta of the
#       campaign's first record, buckets..., customer lists...
# ARGV: id, decision, score, window ms, records kept per bucket, reference ttl ms, number
#       of buckets, number of customer lists, campaign threshold, records kept per customer
#       list, meta,
#       customers (joined), campaign, number of identities, then the identities counted
#       in the campaign.
# Returns the stored decision fields: decision, count (customers in the campaign), earlier.
REGISTER = (
    _REGISTER
    + """
local done = redis.call('HGETALL', KEYS[1])
if #done > 0 then return done end
return register(ARGV[2])
"""
)

# Look up and, when no candidate is similar enough to change the decision made without
# candidates (ARGV[2]), register with that decision: a new complaint costs one round trip.
# KEYS and ARGV as REGISTER's, followed in ARGV by: oldest score in the window, newest to
# read per customer list, per bucket, most candidates, meta key prefix, the similarity
# threshold, the record's signature.
# Returns {'done', fields} when decided before, {'registered', fields} when registered now,
# or {'found', candidates} as LOOKUP returns them, for the caller to decide and REGISTER.
SETTLE = (
    _GATHER
    + _REGISTER
    + """
local done = redis.call('HGETALL', KEYS[1])
if #done > 0 then return {'done', done} end
local buckets, customer_lists = tonumber(ARGV[7]), tonumber(ARGV[8])
local at = 15 + tonumber(ARGV[14])
local threshold, signature = tonumber(ARGV[at + 5]), ARGV[at + 6]
local lists = {}
for i = 7 + buckets, 6 + buckets + customer_lists do table.insert(lists, KEYS[i]) end
for i = 7, 6 + buckets do table.insert(lists, KEYS[i]) end
local ids, metas = gather(lists, customer_lists, ARGV[at], ARGV[at + 1], ARGV[at + 2],
  tonumber(ARGV[at + 3]), ARGV[at + 4])

-- Whether two signatures score at least the threshold, counted as Signature.similarity
-- counts: the share of the 128 values that are equal, so at most `allowed` may differ.
-- Signatures of another size are left to the caller.
-- The record's values are split once, and only when there is a candidate to compare.
local lanes, allowed = nil, -1
while allowed < 128 and (128 - (allowed + 1)) / 128 >= threshold do allowed = allowed + 1 end
local function similar(other)
  if #other ~= 512 or #signature ~= 512 then return true end
  if allowed < 0 then return false end
  if lanes == nil then
    lanes = {}
    for i = 1, 128 do lanes[i] = string.sub(signature, 4 * i - 3, 4 * i) end
  end
  local differ = 0
  for i = 1, 128 do
    if string.sub(other, 4 * i - 3, 4 * i) ~= lanes[i] then
      differ = differ + 1
      if differ > allowed then return false end
    end
  end
  return true
end

if #signature > 0 then
  for j, id in ipairs(ids) do
    local meta = metas[j]
    local other = string.sub(meta, (string.find(meta, '\\n', 1, true) or #meta) + 1)
    if id ~= ARGV[1] and #other > 0 and similar(other) then
      return {'found', packed(ids, metas)}
    end
  end
end
return {'registered', register(ARGV[2])}
"""
)

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
