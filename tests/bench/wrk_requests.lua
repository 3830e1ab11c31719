-- wrk script for the ingest benchmark (tests/bench/bench_ingest.py writes the pool files).
--
-- Usage: wrk -t T -c C -d 10s --latency -s wrk_requests.lua URL -- FILE_0 ... FILE_T-1
-- Thread i reads FILE_i: four lines per request (webhook-id, webhook-timestamp,
-- webhook-signature, JSON body) and hands them out in turn. Reading line by line keeps
-- memory flat even for pools of 100-event batches. At the end of a file it starts over and
-- counts a wrap: the repeated messageIds are then duplicates, which leadbot acknowledges
-- with accepted=0, so the bench counts accepted events, not only 202 responses.
-- done() prints one line "WRKJSON {...}" that the bench parses.

local threads = {}
local next_id = 1

function setup(thread)
   thread:set("tid", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   local path = args[tid]
   if path == nil then
      error("wrk_requests.lua: no pool file for thread " .. tid .. "; pass one per thread after --")
   end
   file = assert(io.open(path, "rb"))
   sent, wraps, responses = 0, 0, 0
   s202, s2xx, s401, s4xx, s5xx, sother = 0, 0, 0, 0, 0, 0
   accepted, duplicates = 0, 0
end

local function next_line()
   local line = file:read("*l")
   if line == nil then
      wraps = wraps + 1
      file:seek("set", 0)
      line = file:read("*l")
   end
   return line
end

function request()
   local id = next_line()
   local ts = file:read("*l")
   local sig = file:read("*l")
   local body = file:read("*l")
   sent = sent + 1
   return wrk.format("POST", nil, {
      ["webhook-id"] = id,
      ["webhook-timestamp"] = ts,
      ["webhook-signature"] = sig,
      ["Content-Type"] = "application/json",
   }, body)
end

function response(status, headers, body)
   responses = responses + 1
   if status == 202 then
      s202 = s202 + 1
      local a, d = string.match(body, '"accepted":(%d+),"duplicates":(%d+)')
      accepted = accepted + (tonumber(a) or 0)
      duplicates = duplicates + (tonumber(d) or 0)
   elseif status >= 200 and status < 300 then
      s2xx = s2xx + 1
   elseif status == 401 then
      s401 = s401 + 1
   elseif status >= 400 and status < 500 then
      s4xx = s4xx + 1
   elseif status >= 500 then
      s5xx = s5xx + 1
   else
      sother = sother + 1
   end
end

local COUNTERS = {
   "sent", "wraps", "responses", "s202", "s2xx", "s401", "s4xx", "s5xx", "sother",
   "accepted", "duplicates",
}

function done(summary, latency, requests)
   local total = {}
   for _, name in ipairs(COUNTERS) do total[name] = 0 end
   for _, thread in ipairs(threads) do
      for _, name in ipairs(COUNTERS) do
         total[name] = total[name] + (thread:get(name) or 0)
      end
   end
   local e = summary.errors
   local parts = {
      string.format('"duration_us":%d', summary.duration),
      string.format('"completed":%d', summary.requests),
      string.format('"p50_us":%d', latency:percentile(50.0)),
      string.format('"p99_us":%d', latency:percentile(99.0)),
      string.format('"mean_us":%.1f', latency.mean),
      string.format('"max_us":%d', latency.max),
      string.format('"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d',
                    e.connect, e.read, e.write, e.timeout),
   }
   for _, name in ipairs(COUNTERS) do
      table.insert(parts, string.format('"%s":%d', name, total[name]))
   end
   io.write("WRKJSON {" .. table.concat(parts, ",") .. "}\n")
end
