-- wrk script: send absolute-form requests (GET http://host:port/path) so the
-- server wrk connects to acts as a forward proxy. BENCH_TARGET is the URL
-- the proxy should fetch.
local target = os.getenv("BENCH_TARGET")
if target == nil then
  error("BENCH_TARGET is not set")
end
wrk.method = "GET"
wrk.path = target
wrk.headers["Host"] = target:match("^http://([^/]+)")
