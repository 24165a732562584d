-- json_api_server.lua: a small JSON API on socket.http.server, with keep-alive: a list of notes
-- to read (GET /notes, GET /notes/N), add to (POST /notes with {"text": "..."}) and delete from
-- (DELETE /notes/N). Ctrl-C (or SIGTERM) shuts it down gracefully.
--
--   lua5.4 examples/json_api_server.lua [port]   serve on 127.0.0.1 until SIGINT/SIGTERM
--   lua5.4 examples/json_api_server.lua --check  run a client over one kept-alive connection
local socket = require("socket")
local server = require("socket.http.server")
local async = socket.async

-- A minimal JSON encoder (strings, numbers, booleans, arrays, objects) and a decoder for what
-- this API receives: one object of string fields.
local function encode(v)
  local t = type(v)
  if t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c) return ("\\u%04x"):format(c:byte()) end) .. '"'
  elseif t == "number" or t == "boolean" then
    return tostring(v)
  elseif t == "table" then
    local out = {}
    if #v > 0 or next(v) == nil then
      for i, x in ipairs(v) do out[i] = encode(x) end
      return "[" .. table.concat(out, ",") .. "]"
    end
    for k, x in pairs(v) do out[#out + 1] = encode(tostring(k)) .. ":" .. encode(x) end
    table.sort(out)
    return "{" .. table.concat(out, ",") .. "}"
  end
  return "null"
end
local function decode_object(s)
  local obj = {}
  for k, v in (s or ""):gmatch('"([%w_]+)"%s*:%s*"([^"\\]*)"') do obj[k] = v end
  return obj
end
local notes, next_id = {}, 1
local function reply(res, status, value)
  res:status(status):header("Content-Type", "application/json"):finish(encode(value) .. "\n")
end

local function handler(req, res)
  local id = tonumber(req.path:match("^/notes/(%d+)$"))
  if req.path == "/notes" and req.method == "GET" then
    local list = {}
    for _, n in pairs(notes) do list[#list + 1] = n end
    table.sort(list, function(a, b) return a.id < b.id end)
    reply(res, 200, list)
  elseif req.path == "/notes" and req.method == "POST" then
    local text = decode_object(req:body()).text
    if not text then return reply(res, 400, { error = "text missing" }) end
    notes[next_id] = { id = next_id, text = text }
    next_id = next_id + 1
    reply(res, 201, notes[next_id - 1])
  elseif id and notes[id] and req.method == "GET" then
    reply(res, 200, notes[id])
  elseif id and notes[id] and req.method == "DELETE" then
    notes[id] = nil
    reply(res, 200, { deleted = id })
  else
    reply(res, 404, { error = "no such resource" })
  end
end

async.run(function()
  local srv = assert(server.listen{ port = tonumber(arg[1]) or 0, handler = handler,
    max_body = 65536, idle_timeout = 15 })
  local _, port = srv:getsockname()
  if arg[1] ~= "--check" then
    print("JSON API on http://127.0.0.1:" .. port .. "/notes")
    async.spawn(function() async.signal("SIGTERM"); async.shutdown(5) end)
    async.signal("SIGINT")
    return async.shutdown(5)
  end
  -- The check: five requests on one connection, read with the parser of socket.http.core.
  local c = assert(socket.connect("127.0.0.1", port))
  c:settimeout(5)
  local parser = require("socket.http.core").parser("response", nil, "map")
  local function call(method, path, body)
    c:send(("%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"):format(method, path,
      #(body or ""), body or ""))
    local head, used, data = nil, nil, ""
    while not head do
      data = data .. assert(c:receiveany())
      head, used = parser:feed(data)
    end
    parser:reset()
    local text = data:sub(used + 1)
    if #text < head.length then text = text .. assert(c:receive(head.length - #text)) end
    print(method, path, head.status, (text:gsub("\n$", "")))
  end
  call("POST", "/notes", '{"text": "buy milk"}')
  call("POST", "/notes", '{"text": "write docs"}')
  call("DELETE", "/notes/1")
  call("GET", "/notes")
  call("GET", "/notes/7")
  print("5 requests over 1 connection: " .. srv:connections() .. " connection open")
  c:close(); srv:close()
end)
