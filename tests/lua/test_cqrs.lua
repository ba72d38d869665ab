-- tests/lua/test_cqrs.lua - the Lua binding against a running engine.
--
--   LUA_CPATH="$BUILD/lua/?.so;;" lua5.4 tests/lua/test_cqrs.lua BUILD ENGINE SERVE_PID
--
-- ENGINE is a `cqrs-orders serve` populated by a short `cqrs-orders demo`
-- (customers 1..50 and their orders; tests/scripts/lua.sh starts it and
-- cleans up). The last test stops it (SIGTERM to SERVE_PID) to check what
-- clients see then. Ends with "lua: N passed, N failed, N skipped"; exits 1
-- if anything failed.
local cqrs = require "cqrs"

local BUILD, NAME, PID = arg[1], arg[2], arg[3]
assert(BUILD and NAME and PID, "usage: test_cqrs.lua BUILD ENGINE SERVE_PID")
local CUSTOMERS = 50

local tests, passed, failed, skipped = {}, 0, 0, 0
local function test(name, fn, needs_client)
	tests[#tests + 1] = { name = name, fn = fn, needs_client = needs_client }
end

local function eq(a, b, what)
	if a ~= b then
		error(string.format("%s: expected %s, got %s", what or "value", tostring(b), tostring(a)), 2)
	end
end

local function raises(pattern, fn, ...)
	local ok, err = pcall(fn, ...)
	if ok then error("expected an error matching '" .. pattern .. "'", 2) end
	if not tostring(err):find(pattern) then
		error("error '" .. tostring(err) .. "' does not match '" .. pattern .. "'", 2)
	end
end

-- The CLI's view of a row: its JSON, flat objects of numbers, strings and
-- booleans only.
local function cli_get(view, key)
	local p = io.popen(string.format("%s/cqrs view get %s %s %s", BUILD, NAME, view, key))
	local line = p:read("a")
	p:close()
	local obj = {}
	local i = 2
	while i < #line do
		local k, e = line:match('^"([%w_]+)":()', i)
		if not k then break end
		local v, n
		if line:sub(e, e) == '"' then
			v, n = line:match('^"([^"]*)"()', e)
		else
			v, n = line:match('^([^,}]+)()', e)
			v = v == "true" or (v ~= "false" and math.tointeger(tonumber(v)) or tonumber(v))
		end
		obj[k] = v
		i = n + 1
	end
	return obj
end

local _next_id = (1 << 40) + math.random(1 << 30) * 64
local function fresh_id()
	_next_id = _next_id + 1
	return _next_id
end

local eng = assert(cqrs.connect(NAME))
local OS = assert(eng:view("order_summaries"))
local CS = assert(eng:view("customer_stats"))

-- ---- reading ------------------------------------------------------------------------

test("views are listed and cached", function()
	local names = eng:views()
	table.sort(names)
	eq(table.concat(names, ","), "active_orders,customer_stats,order_summaries", "views")
	eq(eng:view("order_summaries"), OS, "cached view")
	eq(OS:name(), "order_summaries", "name")
	eq(OS:engine(), NAME, "engine")
	assert(tostring(OS):find("cqrs.View"))
end)

test("get matches the CLI", function()
	for _, key in ipairs({ 1, 2, 3, 17, 100, 1000 }) do
		local row = assert(OS:get(key), "row " .. key)
		local cli = cli_get("order_summaries", key)
		local n = 0
		for k, v in pairs(cli) do
			eq(row[k], v, "field " .. k .. " of " .. key)
			n = n + 1
		end
		eq(n, 8, "field count")
	end
end)

test("get fills a given table", function()
	local t = { stale = true }
	local r = OS:get(5, t)
	eq(r, t, "same table")
	eq(t.order_id, 5, "order_id")
	eq(t.stale, true, "other keys kept")
	eq(OS:get(10 ^ 15 // 1, t), nil, "miss")
end)

test("missing keys and get_raw", function()
	eq(OS:get(10 ^ 15 // 1), nil, "missing")
	eq(OS:get(0), nil, "zero")
	eq(OS:get_raw(10 ^ 15 // 1), nil, "missing raw")
	local raw = OS:get_raw(7)
	eq(#raw, 80, "raw size")
	local order_id, customer_id = string.unpack("<I8I8", raw)
	eq(order_id, 7, "raw order_id")
	eq(customer_id, OS:get(7).customer_id, "raw customer_id")
end)

test("key types", function()
	eq(OS:get(1.0).order_id, 1, "integral float key")
	raises("wants a number", OS.get, OS, "1")
	raises("wants a number", OS.get, OS, {})
	raises("out of range", OS.get, OS, 1.5)
	raises("closed", function() local v = assert(cqrs.connect(NAME, { readonly = true })):view("order_summaries"); v:close(); v:get(1) end)
end)

test("find by secondary index", function()
	local stats = CS:get(3)
	local rows = OS:find("customer_id", 3)
	eq(#rows, stats.orders, "rows of customer 3")
	local active = 0
	for _, r in ipairs(rows) do
		eq(r.customer_id, 3, "customer_id")
		eq(r.customer_name, "customer-3", "customer_name")
		if r.status == 1 or r.status == 2 then active = active + 1 end
	end
	eq(active, stats.active_orders, "active orders")
	eq(#OS:find("customer_id", 3, true), #rows, "snapshot")
	eq(#OS:find("customer_id", 10 ^ 12 // 1), 0, "none")
	raises("no field", OS.find, OS, "nope", 1)
	raises("not indexed", OS.find, OS, "status", 1)
	raises("wants a number", OS.find, OS, "customer_id", "3")
end)

test("scan and count", function()
	local rows = CS:scan()
	eq(#rows, #CS, "#v")
	eq(#rows, CS:count(), "count")
	local seen = {}
	for _, r in ipairs(rows) do seen[r.customer_id] = true end
	for id = 1, CUSTOMERS do assert(seen[id], "customer " .. id) end
	eq(#CS:scan(true), #rows, "snapshot scan")
end)

test("schema", function()
	local s = OS:schema()
	eq(s.name, "OrderSummary", "name")
	eq(s.size, 80, "size")
	eq(s.key, "order_id", "key")
	eq(s.indexes[1], "customer_id", "index")
	eq(#s.fields, 8, "fields")
	eq(s.fields[3].name, "customer_name", "field 3")
	eq(s.fields[3].type, "str", "type")
	eq(s.fields[3].offset, 16, "offset")
	eq(s.fields[3].size, 32, "size")
	eq(CS:schema().key, "customer_id", "customer_stats key")
	eq(#CS:schema().indexes, 0, "no indexes")
end)

test("wait and applied_seq", function()
	local a = OS:applied_seq()
	assert(a > 0, "applied_seq")
	eq(OS:wait(a), true, "reached")
	eq(OS:wait(1, 0), true, "reached, no wait")
	local t = os.time()
	local ok, msg, kind = OS:wait(a + 10 ^ 9 // 1, 0.2)
	eq(ok, nil, "timed out")
	eq(kind, "timeout", "kind")
	assert(msg:find("timed out"), msg)
	assert(os.time() - t <= 2)
	raises("timeout", OS.wait, OS, a, -1)
	raises("number", OS.wait, OS, "x")
end)

test("errors", function()
	local v, msg, kind = eng:view("no_such_view")
	eq(v, nil, "unknown view")
	eq(kind, "notfound", "kind")
	assert(msg:find("no_such_view"), msg)
	local e2, m2, k2 = cqrs.connect("no_such_engine_lua")
	eq(e2, nil, "unknown engine")
	eq(k2, "notfound", "kind")
	assert(m2:find("no_such_engine_lua"), m2)
	raises("engine name", cqrs.connect, "a/b")
	raises("engine name", cqrs.connect, "")
	raises("string expected", cqrs.connect, {})
	local bad, _, k3 = eng:view("../x")
	eq(bad, nil, "bad view name")
	eq(k3, "EINVAL", "kind")
	eq(cqrs.strerror(-10001), "command rejected", "strerror")
end)

test("close and to-be-closed", function()
	do
		local e <close> = assert(cqrs.connect(NAME, { readonly = true }))
		local v <close> = assert(e:view("customer_stats"))
		eq(v:get(1).customer_id, 1, "read")
	end
	local e = assert(cqrs.connect(NAME, { readonly = true }))
	local v = assert(e:view("customer_stats"))
	e:close()
	raises("closed", v.get, v, 1)
	raises("closed", e.views, e)
	assert(tostring(e):find("closed"))
	-- a View outlives an Engine that was only garbage collected
	local v2 = assert(assert(cqrs.connect(NAME, { readonly = true })):view("customer_stats"))
	collectgarbage()
	collectgarbage()
	eq(v2:get(2).customer_id, 2, "view after its engine's __gc")
end)

-- ---- submitting ---------------------------------------------------------------------

test("commands", function()
	local names = eng:commands()
	table.sort(names)
	eq(table.concat(names, ","),
	   "CancelOrder,CompleteOrder,CreateOrder,DeactivateCustomer,RegisterCustomer,ShipOrder",
	   "commands")
	local s = eng:command_schema("CreateOrder")
	eq(s.fields[1].name, "order_id", "field 1")
	eq(s.key, nil, "no key")
	local none, _, kind = eng:command_schema("Nope")
	eq(none, nil, "unknown")
	eq(kind, "notfound", "kind")
	assert(math.type(eng:client_id()) == "integer")
end, true)

test("read your writes", function()
	local cid = fresh_id()
	local seq = assert(eng:submit("RegisterCustomer", { customer_id = cid, name = "Ada Lovelace" }))
	assert(math.type(seq) == "integer" and seq > 0)
	assert(CS:wait(seq, 5))
	local c = CS:get(cid)
	eq(c.name, "Ada Lovelace", "name")
	eq(c.active, true, "active")
	local oid = fresh_id()
	local seq2 = assert(eng:submit("CreateOrder", { order_id = oid, customer_id = cid,
		item_count = 2, total = 1999, shipping_address = "12 Analytical Way" }))
	assert(seq2 > seq)
	assert(OS:wait(seq2, 5))
	local o = OS:get(oid)
	eq(o.customer_name, "Ada Lovelace", "customer_name")
	eq(o.item_count, 2, "item_count")
	eq(o.total, 1999, "total")
	eq(o.status, 1, "status")
	eq(#OS:find("customer_id", cid), 1, "find")
	local seq3 = assert(eng:submit("ShipOrder", { order_id = oid }))
	assert(OS:wait(seq3, 5))
	eq(OS:get(oid).status, 2, "shipped")
	assert(cli_get("order_summaries", oid).status == 2)
end, true)

test("u64 ids above 2^63 round trip as their bit pattern", function()
	local cid = math.mininteger + fresh_id() -- 2^63 + n as a Lua integer
	local res, err = eng:submit("RegisterCustomer", { customer_id = cid, name = "Big" })
	if res then
		assert(CS:wait(res, 5))
		eq(CS:get(cid).customer_id, cid, "customer_id")
	else
		assert(err:find("out of range"), err) -- the domain caps ids at 2^62
	end
end, true)

test("rejections carry the engine's reason", function()
	local unknown = fresh_id()
	local seq, reason, kind = eng:submit("CreateOrder", { order_id = fresh_id(),
		customer_id = unknown, item_count = 1, total = 1 })
	eq(seq, nil, "rejected")
	eq(kind, "rejected", "kind")
	eq(reason, "customer " .. unknown .. " unknown", "reason")
	local cid = fresh_id()
	assert(eng:submit("RegisterCustomer", { customer_id = cid, name = "R" }))
	local s2, r2, k2 = eng:submit("RegisterCustomer", { customer_id = cid, name = "R" })
	eq(s2, nil, "exists")
	eq(k2, "rejected", "kind")
	eq(r2, "customer " .. cid .. " exists", "reason")
	local s3, r3 = eng:submit("RegisterCustomer", { customer_id = fresh_id() })
	eq(s3, nil, "empty name")
	eq(r3, "customer name is empty", "reason")
end, true)

test("conflict and duplicate", function()
	local cid = fresh_id()
	assert(eng:submit("RegisterCustomer", { customer_id = cid, name = "C" },
		{ aggregate_id = cid, expected_version = 0 }))
	local s, r, k = eng:submit("DeactivateCustomer", { customer_id = cid },
		{ aggregate_id = cid, expected_version = 0 })
	eq(s, nil, "conflict")
	eq(k, "conflict", "kind")
	assert(#r > 0)
	assert(eng:submit("DeactivateCustomer", { customer_id = cid },
		{ aggregate_id = cid, expected_version = 1, timeout = 5 }))
	-- explicit client_seq values on a connection of their own (the client
	-- numbers seq-less requests 1, 2, ... per connection)
	local e2 <close> = assert(cqrs.connect(NAME))
	local id2 = fresh_id()
	local first = assert(e2:submit("RegisterCustomer", { customer_id = id2, name = "D" },
		{ client_seq = 777777 }))
	local s4, r4, k4, orig = e2:submit("RegisterCustomer", { customer_id = id2, name = "D" },
		{ client_seq = 777777 })
	eq(s4, nil, "duplicate")
	eq(k4, "duplicate", "kind")
	eq(orig, first, "original seq")
	assert(#r4 > 0)
end, true)

test("encoding errors", function()
	raises("no command", eng.submit, eng, "Nope", {})
	raises("no field 'nick'", eng.submit, eng, "RegisterCustomer", { customer_id = 1, nick = "x" })
	raises("wants a string", eng.submit, eng, "RegisterCustomer", { customer_id = fresh_id(), name = 5 })
	raises("wants a number", eng.submit, eng, "RegisterCustomer", { customer_id = "5", name = "x" })
	raises("do not fit", eng.submit, eng, "RegisterCustomer", { customer_id = fresh_id(), name = string.rep("x", 33) })
	raises("out of range", eng.submit, eng, "CreateOrder", { order_id = fresh_id(), customer_id = 1, item_count = 1 << 32, total = 1 })
	-- a str holding a NUL would read back cut short ("a\0b" as "a")
	raises("NUL byte at offset 1", eng.submit, eng, "RegisterCustomer", { customer_id = fresh_id(), name = "a\0b" })
	raises("wants a number", eng.submit, eng, "RegisterCustomer", { customer_id = true, name = "x" })
	raises("integer", eng.submit, eng, "RegisterCustomer", { customer_id = 1, name = "x" }, { client_seq = "x" })
	local ro <close> = assert(cqrs.connect(NAME, { readonly = true }))
	raises("readonly", ro.submit, ro, "RegisterCustomer", { customer_id = 1, name = "x" })
end, true)

test("many round trips", function()
	local cid = fresh_id()
	assert(eng:submit("RegisterCustomer", { customer_id = cid, name = "M" }))
	local last = 0
	local base = fresh_id() * 1024
	for i = 1, 300 do
		local seq = assert(eng:submit("CreateOrder", { order_id = base + i, customer_id = cid,
			item_count = 1, total = i }))
		assert(seq > last)
		last = seq
	end
	assert(CS:wait(last, 5))
	eq(CS:get(cid).orders, 300, "orders")
end, true)

-- Last: stops the engine.
test("the engine going away", function()
	local cid = fresh_id()
	local seq = assert(eng:submit("RegisterCustomer", { customer_id = cid, name = "Last" }))
	assert(CS:wait(seq, 5))
	assert(os.execute("kill -TERM " .. PID))
	for _ = 1, 300 do
		if not os.execute("kill -0 " .. PID .. " 2>/dev/null") then break end
		os.execute("sleep 0.05")
	end
	local s, msg, kind = eng:submit("RegisterCustomer", { customer_id = fresh_id(), name = "x" })
	eq(s, nil, "after stop")
	eq(kind, "stopped", "kind")
	assert(#msg > 0)
	eq(CS:get(cid).name, "Last", "views stay readable")
	local w, _, wk = CS:wait(seq + 1, 5)
	eq(w, nil, "wait on a stopped engine")
	assert(wk ~= "timeout", "a clear error rather than a timeout: " .. tostring(wk))
end, true)

for _, t in ipairs(tests) do
	if t.needs_client and not cqrs.HAVE_CLIENT then
		skipped = skipped + 1
		print("SKIP " .. t.name .. " (module built without the gateway client)")
	else
		local ok, err = xpcall(t.fn, debug.traceback)
		if ok then
			passed = passed + 1
			print("ok   " .. t.name)
		else
			failed = failed + 1
			print("FAIL " .. t.name .. "\n     " .. tostring(err):gsub("\n", "\n     "))
		end
	end
end
print(string.format("lua: %d passed, %d failed, %d skipped", passed, failed, skipped))
os.exit(failed == 0 and 0 or 1)
