//! The Lua scripts behind the recent windows and the chat lists. Each touches the keys of one chat
//! or one user, which share a hash slot, so each runs atomically on one master.
//!
//! A window is one hash: `_primed` (`0` started by a send, `1` primed from the store, `held`
//! just dropped), `_complete` (`1` when it holds the whole chat) and one field per message
//! (`<ms>:<id>` → the message as JSON, content sealed). One key means eviction or expiry takes
//! the whole window, never part of it.

use fred::types::scripts::Script;

/// Keeps the newest `capacity` messages of a window (fields sort oldest first) and clears
/// `_complete` when it drops any. Prepended to the scripts that add messages.
const TRIM: &str = r"
local function trim(key, capacity)
  if redis.call('HLEN', key) - 2 <= capacity then return end
  local fields = {}
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.sub(field, 1, 1) ~= '_' then table.insert(fields, field) end
  end
  table.sort(fields)
  for i = 1, #fields - capacity do redis.call('HDEL', key, fields[i]) end
  redis.call('HSET', key, '_complete', '0')
end
";

/// Adds one message (`ARGV`: field, payload, capacity, ttl ms) to its window, starting an
/// unprimed window when there is none; trims the oldest beyond the capacity. A held window is
/// left alone. A new window lives `ttl`; an existing one keeps its expiry.
const REMEMBER: &str = r"
local key = KEYS[1]
local state = redis.call('HGET', key, '_primed')
if state == 'held' then return 0 end
redis.call('HSET', key, ARGV[1], ARGV[2])
if not state then
  redis.call('HSET', key, '_primed', '0', '_complete', '0')
  redis.call('PEXPIRE', key, ARGV[4])
elseif redis.call('PTTL', key) < 0 then
  redis.call('PEXPIRE', key, ARGV[4])
end
trim(key, tonumber(ARGV[3]))
return 1
";

/// Primes a window from a store read (`ARGV`: capacity, ttl ms, complete 0|1, then field,
/// payload pairs). Messages already there (sent meanwhile, or newer versions) are kept; the
/// window then holds the newest `capacity` of both and lives `ttl` from now. A held window is
/// not primed.
const PRIME: &str = r"
local key = KEYS[1]
if redis.call('HGET', key, '_primed') == 'held' then return 0 end
for i = 4, #ARGV, 2 do redis.call('HSETNX', key, ARGV[i], ARGV[i + 1]) end
redis.call('HSET', key, '_primed', '1', '_complete', ARGV[3])
trim(key, tonumber(ARGV[1]))
redis.call('PEXPIRE', key, ARGV[2])
return 1
";

/// Replaces a message that is in its window (`ARGV`: field, payload); does nothing otherwise.
const REFRESH: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
";

/// Drops a window and holds its place for `ARGV[1]` ms: a store read that began before the
/// update that could not be cached must not prime the window without it.
const FORGET_WINDOW: &str = r"
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], '_primed', 'held', '_complete', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
";

/// Caches a chat list (`ARGV`: json, ttl ms) unless its place is held.
const PUT_LIST: &str = r"
if redis.call('GET', KEYS[1]) == '~held' then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

/// The value that holds a dropped chat list's place.
pub(crate) const HELD_LIST: &str = "~held";

/// The loaded scripts (each is sent once per master, then called by its SHA-1).
pub(crate) struct Scripts {
    pub(crate) remember: Script,
    pub(crate) prime: Script,
    pub(crate) refresh: Script,
    pub(crate) forget_window: Script,
    pub(crate) put_list: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            remember: Script::from_lua(format!("{TRIM}{REMEMBER}")),
            prime: Script::from_lua(format!("{TRIM}{PRIME}")),
            refresh: Script::from_lua(REFRESH),
            forget_window: Script::from_lua(FORGET_WINDOW),
            put_list: Script::from_lua(PUT_LIST),
        }
    }
}
