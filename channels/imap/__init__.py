"""IMAP: hosted mailboxes (hello@ on Exchange Online, Google Workspace, Dovecot) read by a
poller that hands each message to the same ``accept`` as the SMTP listener.

One poller per mailbox, each in its own thread, each holding a lease on its mailbox in
Redis: ``service`` runs them, ``poller`` is one mailbox's loop, ``round`` takes in what is
new, ``wait`` sits in IDLE (or sleeps) until there may be more.
"""
