-- kopechka's limiter in Redis: the arithmetic of kopechka/_limits.py, step for step, run
-- atomically by Redis for every process and machine that shares the keys. Keep the two in step:
-- tests/test_redis_limiter.py replays one table of events through both.
--
-- KEYS[1]: the state (a hash)   KEYS[2]: latest answer times (a list)   KEYS[3]: requests in
-- flight (a sorted set: scored by slot time, one member per request)
-- ARGV[1]: "reserve" | "admit" | "feedback"
-- ARGV[2]: now, or "" for Redis' own clock (TIME; "" always, but in the equivalence test)
-- ARGV[3], ARGV[4]: the starting quota and window (used when the state is new)
-- ARGV[5]: a random number in [0, 1)
-- reserve: ARGV[6] max_wait                 -> {granted 0|1, wait, epoch, at}
-- admit: ARGV[6] epoch, ARGV[7] at          -> {wait} or {"void"}
-- feedback: ARGV[6] epoch, ARGV[7] at, ARGV[8] status, ARGV[9] retry_after or ""   -> {}

local SAFETY, MIN_SAMPLE, INCREASE, BETA, FLOOR_SHARE = 0.98, 5, 0.003, 0.9, 0.5
local PLATEAU, PROBE_SHARE, PROBE_STEP, MAX_INTERVAL = 60.0, 0.1, 0.01, 60.0
local MAX_GUARD, DEFAULT_COOLDOWN, LOST, JITTER_SHARE = 1000, 0.375, 300.0, 0.1
local KEEP_MS = 86400000
local START_WINDOW, START_DOUBLING, START_SPAN, START_POLL = 4, 0.5, 4.0, 0.01

local function fmt(x) return string.format('%.17g', x) end

local op = ARGV[1]
local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = (tonumber(t[1]) - 1700000000) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[2])
end
local rand = tonumber(ARGV[5])

local s = {quota = tonumber(ARGV[3]), window = tonumber(ARGV[4]), min_window = tonumber(ARGV[4]),
  known = 0, tat = 0, cooldown_until = 0, spread = 0, epoch = 0, period_start = -1, accepted = 0,
  learn_span = 0, learn_accepted = 0, start_window = 0, first = -1, seq = 0, served = 0}
if s.quota <= 0 then s.min_window = 0; s.start_window = START_WINDOW end
local raw = redis.call('HGETALL', KEYS[1])
for i = 1, #raw, 2 do s[raw[i]] = tonumber(raw[i + 1]) end

local function save()
  local flat = {}
  for k, v in pairs(s) do flat[#flat + 1] = k; flat[#flat + 1] = fmt(v) end
  redis.call('HSET', KEYS[1], unpack(flat))
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], KEEP_MS) end
end

local function interval()
  if s.quota <= 0 then return 0 end
  return math.min(MAX_INTERVAL, s.window / (s.quota * SAFETY))
end

local function window_open()
  local quota = math.min(math.floor(s.quota), MAX_GUARD)
  local n = quota - redis.call('ZCARD', KEYS[3])
  if quota < 1 or (n >= 1 and redis.call('LLEN', KEYS[2]) < n) then return -math.huge end
  if n < 1 then return now + interval() end
  return tonumber(redis.call('LINDEX', KEYS[2], -n)) + s.window
end

local function starting()
  return s.start_window > 0 and s.quota <= 0 and (s.first < 0 or now - s.first < START_SPAN)
end

local function start_full()
  local elapsed = 0
  if s.first >= 0 then elapsed = math.max(0, now - s.first) end
  local size = s.start_window * 2 ^ (elapsed / START_DOUBLING)
  return redis.call('ZCARD', KEYS[3]) >= math.floor(size)
end

local function went(at)
  if s.quota <= 0 and not starting() then return end
  s.seq = s.seq + 1  -- members are unique: several slots may start at the same instant
  redis.call('ZADD', KEYS[3], at, fmt(at) .. '#' .. fmt(s.seq))
  if s.first < 0 then s.first = now end
end

local function span_of(elapsed, wait)
  local span = elapsed + wait
  if wait >= 1 and wait == math.floor(wait) then return math.max(wait, math.floor(span)) end
  return span
end

local function learn()
  if s.learn_span <= 0 or s.learn_accepted < MIN_SAMPLE then return end
  s.quota = s.learn_accepted; s.window = s.learn_span; s.known = s.learn_span
end

local function new_event(wait)
  local untill = math.max(s.cooldown_until, now + wait)
  local elapsed = 0
  if s.period_start >= 0 then elapsed = now - s.period_start end
  local span = span_of(elapsed, wait)
  local learning = s.quota <= 0
  local accepted = s.accepted
  if accepted >= MIN_SAMPLE and elapsed > 0 then s.served = accepted / elapsed end
  if not learning then
    local measured = s.window
    if accepted >= MIN_SAMPLE then measured = s.quota * span / math.max(accepted, 1) end
    local old_interval = interval()
    s.known = math.max(s.min_window, s.window * (1 + PROBE_STEP))
    local w = math.min(MAX_INTERVAL * s.quota, math.max(s.window / BETA, measured))
    if s.served > 0 then  -- the floor: never below a share of what was just served
      w = math.max(s.min_window, math.min(w, math.max(s.window, s.quota / (FLOOR_SHARE * s.served))))
    end
    s.window = w
    s.known = math.min(s.known, w)  -- a floored cut: what holds is no slower than the pace
    untill = untill + rand * old_interval
  end
  s.tat = untill; s.cooldown_until = untill; s.spread = wait * JITTER_SHARE
  s.epoch = s.epoch + 1; s.period_start = -1; s.accepted = 0
  if learning then s.learn_span = span; s.learn_accepted = accepted
  else s.learn_span = 0; s.learn_accepted = 0 end
  learn()
  if s.quota <= 0 and s.first >= 0 then s.first = -1 end  -- taught nothing: the window starts over
end

local function accepted_answer()
  if s.quota > 0 and s.tat > now then
    local probing = s.period_start >= 0 and now - s.period_start >= PLATEAU
    local share = 1
    if s.window <= s.known then share = PROBE_SHARE end
    local w = s.window / (1 + INCREASE * interval() * share)
    if not probing then w = math.max(w, s.known) end
    s.window = math.max(s.min_window, w)
  end
  s.accepted = s.accepted + 1
end

if op == 'reserve' then
  local max_wait = tonumber(ARGV[6])
  local start_window = starting()
  if s.quota <= 0 and not start_window then redis.call('DEL', KEYS[3]) end
  local cooling = now < s.cooldown_until
  local start = math.max(now, s.cooldown_until)
  local at
  local held = false  -- by the start window: a wait of ours, not the server's
  if s.quota > 0 or start_window then
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. fmt(now - LOST))
  end
  if s.quota > 0 then
    at = math.max(s.tat, start, window_open())
  else
    at = start
    if cooling then at = start + rand * s.spread end
    if start_window and at <= now and start_full() then at = now + START_POLL; held = true end
  end
  local wait = at - now
  if wait > max_wait and not (held and max_wait >= 0) then return {0, fmt(wait), s.epoch, fmt(at)} end
  if s.quota > 0 then s.tat = at + interval() end
  if s.period_start < 0 then s.period_start = at end
  if s.first < 0 and wait <= 0 then s.first = at end
  if wait <= 0 then went(at) end
  save()
  return {1, fmt(wait), s.epoch, fmt(at)}
end

local epoch, at = tonumber(ARGV[6]), tonumber(ARGV[7])

if op == 'admit' then
  if epoch ~= s.epoch or at < s.cooldown_until then return {'void'} end
  local wait = 0
  if s.quota <= 0 then
    if starting() and start_full() then wait = START_POLL end
  else
    wait = math.max(0, window_open() - now)
  end
  if wait <= 0 then went(at) end
  save()
  return {fmt(wait)}
end

-- feedback
local status = tonumber(ARGV[8])
local keep = math.min(math.floor(s.quota), MAX_GUARD)
local sent = redis.call('ZRANGEBYSCORE', KEYS[3], fmt(at), fmt(at), 'LIMIT', 0, 1)
if #sent > 0 then redis.call('ZREM', KEYS[3], sent[1]) end
if keep >= 1 then
  redis.call('RPUSH', KEYS[2], fmt(now))
  redis.call('LTRIM', KEYS[2], -keep, -1)
end
local ready = status == 429 and ARGV[9] ~= '' and tonumber(ARGV[9]) <= 0  -- "ready now"
if status == 429 and not ready then
  local wait = DEFAULT_COOLDOWN
  if ARGV[9] ~= '' then wait = tonumber(ARGV[9]) end
  if epoch == s.epoch then
    new_event(wait)
  elseif now + wait > s.cooldown_until then
    s.cooldown_until = now + wait; s.tat = math.max(s.tat, now + wait)
  end
elseif status ~= 0 and not ready then
  if epoch == s.epoch then
    accepted_answer()
  elseif epoch == s.epoch - 1 and s.learn_span > 0 then
    s.learn_accepted = s.learn_accepted + 1
    learn()
  end
end
save()
return {}
