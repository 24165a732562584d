-- Regression 208: socket.http joined a repeated response field to its value as each line came,
-- copying the growing value every time: a peer repeating one short field up to the header limit
-- made the client copy gigabytes (and, under the sanitizer, hold 2.4 GB). The values are now
-- gathered and joined once; the result must be the same: in order, joined with ", ".
require("support.helpers").use(_ENV)
local socket = require("socket")
local async = socket.async
local http = require("socket.http")

describe("regression 208: repeated response fields", function()
  it("are joined in order with ', ', also when repeated up to the header limit", function()
    local result = {}
    async.run(function()
      local srv = assert(socket.bind("127.0.0.1", 0))
      local _, port = srv:getsockname()
      local many = 20000
      async.spawn(function()
        for _ = 1, 2 do
          local c = assert(srv:accept())
          c:settimeout(5)
          repeat local line = c:receive("*l") until line == "" or not line
          local head = { "HTTP/1.1 200 OK", "X-A: 1", "Content-Length: 2", "X-A: 2", "x-a:3" }
          if result.first then
            for i = 1, many do head[#head + 1] = "X-B: " .. i end
          end
          c:send(table.concat(head, "\r\n") .. "\r\n\r\nok")
          c:close()
        end
        srv:close()
      end)
      local body, code, headers = http.request("http://127.0.0.1:" .. port .. "/")
      result.first = { body, code, headers and headers["x-a"] }
      body, code, headers = http.request("http://127.0.0.1:" .. port .. "/")
      result.second = { body, code, headers and headers["x-a"],
        headers and select(2, headers["x-b"]:gsub(", ", "")) + 1,
        headers and headers["x-b"]:match("^[^,]*"), headers and headers["x-b"]:match("[^ ]*$") }
    end)
    assert.are.same({ "ok", 200, "1, 2, 3" }, result.first)
    assert.are.same({ "ok", 200, "1, 2, 3", 20000, "1", "20000" }, result.second)
  end)
end)
