-- Regression 250: a chunk-size limit below 15 let a large hex digit through.
--
-- The overflow guard computed (max_chunk_size - digit) / 16 in unsigned arithmetic; with a
-- limit of 9 and the digit "a" (10) the subtraction wrapped to a huge number, so the size passed
-- the limit it should have failed. The guard now refuses a digit larger than the limit first.
local core = require("socket.http.core")

describe("regression 250", function()
  it("a single digit over a small chunk-size limit is refused", function()
    assert.are.same({ nil, "chunk too large", 413 },
      { core.chunked({ max_chunk_size = 9 }):feed("a\r\n") })
    assert.are.same({ nil, "chunk too large", 413 },
      { core.chunked({ max_chunk_size = 0 }):feed("1\r\n") })
    assert.are.same({ "0123456789", 15, false },
      { core.chunked({ max_chunk_size = 10 }):feed("a\r\n0123456789\r\n") })
    assert.are.same({ "", 5, true }, { core.chunked({ max_chunk_size = 0 }):feed("0\r\n\r\n") })
  end)
end)
