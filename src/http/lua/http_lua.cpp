// lua/http_lua.cpp: the Lua module socket.http.core, a thin binding over the pure HTTP/1.1 and
// WebSocket parsers; luaopen_socket_http_core is the only exported symbol.
// Layer: binding over src/http (no uv.h). Nothing here blocks or yields. It sits in its own
// directory so that src/http/*.cpp is exactly the pure layer.
//
// Every parser object lives in its userdata's memory and is trivially destructible (asserted
// below), so a Lua error raised at any point (a memory error while a result table is built, a
// bad argument) skips no destructor. The storage a parser grows comes from the state's own
// allocator (lua_getallocf) and is given back by __gc.
#include <cstring>
#include <new>

#include "http/chunked.hpp"
#include "http/parser.hpp"
#include "http/websocket.hpp"
#include "lua/lua_api.hpp"

namespace uvs::http {
namespace {

constexpr const char* kParserClass = "http.parser";
constexpr const char* kChunkedClass = "http.chunked";
constexpr const char* kWsClass = "websocket.parser";

// A parser's userdata starts with this value, so that a method recognises its object by the
// userdata's size and this word, without the metatable lookup of luaL_checkudata.
constexpr uint32_t kParserMagic = 0x75766870;  // "uvhp"

struct ParserBox {
  uint32_t magic;
  HeadParser parser;
  bool dead;
  bool map;  // headers as { lower-case name = value } instead of the list of fields
};
struct ChunkedBox {
  ChunkedDecoder decoder;
  bool dead;
};
// The frame parser and the message checker; the payload of the frame being read is kept as a
// list of unmasked strings in the userdata's user value, until the frame ends.
struct WsBox {
  ws::FrameParser frames;
  ws::MessageChecker messages;
  int pieces;
  ws::Error failed;  // sticks, as the frame parser's own errors do, until reset
};
static_assert(std::is_trivially_destructible_v<ParserBox>);
static_assert(std::is_trivially_destructible_v<ChunkedBox>);
static_assert(std::is_trivially_destructible_v<WsBox>);

Allocator lua_allocator(lua_State* L) {
  Allocator a;
  a.fn = lua_getallocf(L, &a.ud);
  return a;
}

// The table at `idx` (absent or nil: no settings) as limits: each key must be one of `names`
// and each value an integer from 0 to `max[i]`; found values go to `out[i]`.
void read_limits(lua_State* L, int idx, const char* const* names, const lua_Integer* max,
                 lua_Integer* out) {
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING) luaL_argerror(L, idx, "limit names must be strings");
    const char* key = lua_tostring(L, -2);
    int i = 0;
    while (names[i] && std::strcmp(names[i], key) != 0)
      ++i;
    if (!names[i]) luaL_argerror(L, idx, lua_pushfstring(L, "unknown limit '%s'", key));
    int isint = 0;
    const lua_Integer v = lua_tointegerx(L, -1, &isint);
    if (!isint || v < 0 || v > max[i]) {
      luaL_argerror(L, idx,
                    lua_pushfstring(L, "limit '%s' must be an integer from 0 to %I", key, max[i]));
    }
    out[i] = v;
    lua_pop(L, 1);
  }
}

void push_view(lua_State* L, std::string_view s) { lua_pushlstring(L, s.data(), s.size()); }

// Sets t[key] = s at the top of the stack's table.
void set_string(lua_State* L, const char* key, std::string_view s) {
  push_view(L, s);
  lua_setfield(L, -2, key);
}

void set_bool(lua_State* L, const char* key, bool b) {
  lua_pushboolean(L, b);
  lua_setfield(L, -2, key);
}

// The field names of head tables and a few values, made once and kept as upvalues of the
// parser's methods, so that filling a head does not look each one up in the string cache.
enum HeadKey : uint8_t {
  kKeyMethod = 1,
  kKeyTarget,
  kKeyStatus,
  kKeyReason,
  kKeyVersion,
  kKeyHeaders,
  kKeyFraming,
  kKeyLength,
  kKeyKeepalive,
  kKeyExpectContinue,
  kKeyUpgrade,
  kKeyPath,
  kKeyQuery,
  kValue11,  // and some values
  kValue10,
  kValueNone,
  kValueChunked,
  kValueClose,
  kKeyCount = kValueClose
};
const char* const kHeadKeys[] = {"method",  "target",  "status", "reason",    "version",
                                 "headers", "framing", "length", "keepalive", "expect_continue",
                                 "upgrade", "path",    "query",  "1.1",       "1.0",
                                 "none",    "chunked", "close"};
static_assert(sizeof(kHeadKeys) / sizeof(kHeadKeys[0]) == kKeyCount);

// Pushes one of those strings.
void push_key(lua_State* L, HeadKey key) { lua_pushvalue(L, lua_upvalueindex(key)); }

// { {name, value, lower}, ... } for n fields.
template <class Name, class Value, class Lower>
void push_fields(lua_State* L, uint32_t n, Name name, Value value, Lower lower) {
  lua_createtable(L, static_cast<int>(n), 0);
  for (uint32_t i = 0; i < n; ++i) {
    lua_createtable(L, 3, 0);
    push_view(L, name(i));
    lua_rawseti(L, -2, 1);
    push_view(L, value(i));
    lua_rawseti(L, -2, 2);
    push_view(L, lower(i));
    lua_rawseti(L, -2, 3);
    lua_rawseti(L, -2, static_cast<lua_Integer>(i) + 1);
  }
}

// { lower-case name = value, ... } for n fields: a repeated field's values joined in order with
// ", " (with "; " for cookie, whose values cannot be joined with commas).
template <class Value, class Lower>
void push_field_map(lua_State* L, uint32_t n, Value value, Lower lower) {
  lua_createtable(L, 0, static_cast<int>(n));
  for (uint32_t i = 0; i < n; ++i) {
    const std::string_view name = lower(i);
    push_view(L, name);                   // map name
    lua_pushvalue(L, -1);                 // map name name
    if (lua_rawget(L, -3) == LUA_TNIL) {  // map name old
      lua_pop(L, 1);
      push_view(L, value(i));
    } else {
      if (name == "cookie") {
        lua_pushliteral(L, "; ");
      } else {
        lua_pushliteral(L, ", ");
      }
      push_view(L, value(i));
      lua_concat(L, 3);  // map name joined
    }
    lua_rawset(L, -3);  // map
  }
}

// nil, name, code: how every feed reports a fault.
int push_fault(lua_State* L, const char* name, int code) {
  lua_pushnil(L);
  lua_pushstring(L, name);
  lua_pushinteger(L, code);
  return 3;
}

// --- head parser -----------------------------------------------------------------------------

ParserBox* check_parser(lua_State* L) {
  auto* box = static_cast<ParserBox*>(lua_touserdata(L, 1));
  if (!box || lua_rawlen(L, 1) != sizeof(ParserBox) || box->magic != kParserMagic) {
    box = static_cast<ParserBox*>(luaL_checkudata(L, 1, kParserClass));  // raises
  }
  if (box->dead) luaL_argerror(L, 1, "http.parser already collected");
  return box;
}

// core.parser(kind [, limits [, headers]]) -> parser: kind "request" or "response"; limits as
// in docs/reference/http-core.md; headers "list" (default) or "map".
int core_parser(lua_State* L) {
  static const char* const kinds[] = {"request", "response", nullptr};
  const int kind = luaL_checkoption(L, 1, nullptr, kinds);
  static const char* const forms[] = {"list", "map", nullptr};
  const int form = luaL_checkoption(L, 3, "list", forms);
  static const char* const names[] = {"max_start_line", "max_header_line", "max_headers",
                                      "max_header_bytes", nullptr};
  const Limits defaults;
  lua_Integer v[] = {defaults.max_start_line, defaults.max_header_line, defaults.max_headers,
                     defaults.max_header_bytes};
  const lua_Integer max[] = {kMaxLimit, kMaxLimit, kMaxLimit, kMaxLimit};
  read_limits(L, 2, names, max, v);
  Limits limits;
  limits.max_start_line = static_cast<uint32_t>(v[0]);
  limits.max_header_line = static_cast<uint32_t>(v[1]);
  limits.max_headers = static_cast<uint32_t>(v[2]);
  limits.max_header_bytes = static_cast<uint32_t>(v[3]);
  auto* box = static_cast<ParserBox*>(lua_newuserdatauv(L, sizeof(ParserBox), 0));
  new (box) ParserBox{};
  box->magic = kParserMagic;
  box->map = form == 1;
  box->parser.init(kind == 0 ? Kind::kRequest : Kind::kResponse, limits, lua_allocator(L));
  luaL_setmetatable(L, kParserClass);
  return 1;
}

// Pushes the head table; with `paths`, a request's also gets path and query (parser:next).
void push_head(lua_State* L, const HeadParser& p, bool map, bool paths) {
  lua_createtable(L, 0, 16);
  if (p.kind() == Kind::kRequest) {
    push_key(L, kKeyMethod);
    push_view(L, p.method());
    lua_rawset(L, -3);
    const std::string_view target = p.target();
    push_key(L, kKeyTarget);
    push_view(L, target);
    lua_rawset(L, -3);
    if (paths) {
      const size_t q = target.find('?');
      if (q != std::string_view::npos) {
        push_key(L, kKeyQuery);
        push_view(L, target.substr(q + 1));
        lua_rawset(L, -3);
      }
      push_key(L, kKeyPath);
      push_view(L, request_path(target));
      lua_rawset(L, -3);
    }
  } else {
    push_key(L, kKeyStatus);
    lua_pushinteger(L, p.status());
    lua_rawset(L, -3);
    push_key(L, kKeyReason);
    push_view(L, p.reason());
    lua_rawset(L, -3);
  }
  push_key(L, kKeyVersion);
  if (p.version_major() == 1 && p.version_minor() == 1) {
    push_key(L, kValue11);
  } else if (p.version_major() == 1 && p.version_minor() == 0) {
    push_key(L, kValue10);
  } else {
    lua_pushfstring(L, "%d.%d", p.version_major(), p.version_minor());
  }
  lua_rawset(L, -3);
  push_key(L, kKeyHeaders);
  if (map) {
    push_field_map(
        L, p.field_count(), [&](uint32_t i) { return p.value(i); },
        [&](uint32_t i) { return p.lower_name(i); });
  } else {
    push_fields(
        L, p.field_count(), [&](uint32_t i) { return p.name(i); },
        [&](uint32_t i) { return p.value(i); }, [&](uint32_t i) { return p.lower_name(i); });
  }
  lua_rawset(L, -3);
  static const HeadKey framings[] = {kValueNone, kKeyLength, kValueChunked, kValueClose};
  push_key(L, kKeyFraming);
  push_key(L, framings[static_cast<int>(p.framing())]);
  lua_rawset(L, -3);
  if (p.framing() == Framing::kLength) {
    push_key(L, kKeyLength);
    lua_pushinteger(L, static_cast<lua_Integer>(p.content_length()));
    lua_rawset(L, -3);
  }
  push_key(L, kKeyKeepalive);
  lua_pushboolean(L, p.keep_alive());
  lua_rawset(L, -3);
  push_key(L, kKeyExpectContinue);
  lua_pushboolean(L, p.expect_continue());
  lua_rawset(L, -3);
  if (!p.upgrade().empty()) {
    push_key(L, kKeyUpgrade);
    push_view(L, p.upgrade());
    lua_rawset(L, -3);
  }
}

// Feeds argument 2 to the parser. Returns 0 once a head is complete (its bytes in `*used`);
// otherwise pushes nil (more needed) or the fault and returns their count, resetting the parser
// after a fault when `reset` says so.
int feed_head(lua_State* L, ParserBox* box, size_t* used, bool reset) {
  size_t n = 0;
  const char* data = luaL_checklstring(L, 2, &n);
  const Status st = box->parser.feed(data, n, used);
  if (st == Status::kNeedMore) {
    lua_pushnil(L);
    return 1;
  }
  if (st == Status::kError) {
    const Error e = box->parser.error();
    if (reset) box->parser.reset();
    return push_fault(L, error_name(e), error_status(e));
  }
  return 0;
}

// parser:feed(data) -> nil (more needed) | head, consumed | nil, errname, status
int parser_feed(lua_State* L) {
  ParserBox* box = check_parser(L);
  size_t used = 0;
  if (const int pushed = feed_head(L, box, &used, false)) return pushed;
  push_head(L, box->parser, box->map, false);
  lua_pushinteger(L, static_cast<lua_Integer>(used));
  return 2;
}

// parser:next(data [, class]) -> as feed, but the parser is reset once the head is complete or
// has failed, a request's head also has path and query, and `class` becomes its metatable.
int parser_next(lua_State* L) {
  ParserBox* box = check_parser(L);
  luaL_checkstring(L, 2);
  const bool cls = !lua_isnoneornil(L, 3);
  if (cls) luaL_checktype(L, 3, LUA_TTABLE);
  size_t used = 0;
  if (const int pushed = feed_head(L, box, &used, true)) return pushed;
  push_head(L, box->parser, box->map, true);
  box->parser.reset();
  if (cls) {
    lua_pushvalue(L, 3);
    lua_setmetatable(L, -2);
  }
  lua_pushinteger(L, static_cast<lua_Integer>(used));
  return 2;
}

// parser:reset([no_body]) -> parser: ready for the next head; no_body (responses) says the
// request was HEAD.
int parser_reset(lua_State* L) {
  ParserBox* box = check_parser(L);
  box->parser.reset(lua_toboolean(L, 2) != 0);
  lua_settop(L, 1);
  return 1;
}

int parser_gc(lua_State* L) {
  auto* box = static_cast<ParserBox*>(luaL_checkudata(L, 1, kParserClass));
  if (!box->dead) box->parser.release();
  box->dead = true;
  return 0;
}

// --- chunked decoder -------------------------------------------------------------------------

ChunkedBox* check_chunked(lua_State* L) {
  auto* box = static_cast<ChunkedBox*>(luaL_checkudata(L, 1, kChunkedClass));
  if (box->dead) luaL_argerror(L, 1, "http.chunked already collected");
  return box;
}

// core.chunked([limits]) -> decoder
int core_chunked(lua_State* L) {
  static const char* const names[] = {"max_chunk_size", "max_chunk_line",    "max_trailer_line",
                                      "max_trailers",   "max_trailer_bytes", nullptr};
  const ChunkedLimits defaults;
  lua_Integer v[] = {static_cast<lua_Integer>(defaults.max_chunk_size), defaults.max_chunk_line,
                     defaults.max_trailer_line, defaults.max_trailers, defaults.max_trailer_bytes};
  const lua_Integer max[] = {LUA_MAXINTEGER, kMaxLimit, kMaxLimit, kMaxLimit, kMaxLimit};
  read_limits(L, 1, names, max, v);
  ChunkedLimits limits;
  limits.max_chunk_size = static_cast<uint64_t>(v[0]);
  limits.max_chunk_line = static_cast<uint32_t>(v[1]);
  limits.max_trailer_line = static_cast<uint32_t>(v[2]);
  limits.max_trailers = static_cast<uint32_t>(v[3]);
  limits.max_trailer_bytes = static_cast<uint32_t>(v[4]);
  auto* box = static_cast<ChunkedBox*>(lua_newuserdatauv(L, sizeof(ChunkedBox), 0));
  new (box) ChunkedBox{};
  box->decoder.init(limits, lua_allocator(L));
  luaL_setmetatable(L, kChunkedClass);
  return 1;
}

// decoder:feed(data) -> body, consumed, done | nil, errname, status: `body` is the data decoded
// from `data` (possibly ""); `done` is true once the last chunk and the trailers are read, and
// `consumed` then stops right after them.
int chunked_feed(lua_State* L) {
  ChunkedBox* box = check_chunked(L);
  size_t n = 0;
  const char* p = luaL_checklstring(L, 2, &n);
  size_t used = 0;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (;;) {
    const ChunkedDecoder::Step s = box->decoder.feed(p + used, n - used);
    used += s.consumed;
    if (s.status == Status::kData) {
      luaL_addlstring(&b, s.data.data(), s.data.size());
      if (used < n) continue;
    }
    if (s.status == Status::kError) {
      const Error e = box->decoder.error();
      return push_fault(L, error_name(e), error_status(e));
    }
    luaL_pushresult(&b);
    lua_pushinteger(L, static_cast<lua_Integer>(used));
    lua_pushboolean(L, s.status == Status::kComplete);
    return 3;
  }
}

// decoder:trailers() -> { {name, value, lower}, ... } (empty until done)
int chunked_trailers(lua_State* L) {
  ChunkedBox* box = check_chunked(L);
  const ChunkedDecoder& d = box->decoder;
  push_fields(
      L, d.complete() ? d.trailer_count() : 0, [&](uint32_t i) { return d.trailer_name(i); },
      [&](uint32_t i) { return d.trailer_value(i); },
      [&](uint32_t i) { return d.trailer_lower_name(i); });
  return 1;
}

// decoder:reset() -> decoder
int chunked_reset(lua_State* L) {
  check_chunked(L)->decoder.reset();
  lua_settop(L, 1);
  return 1;
}

int chunked_gc(lua_State* L) {
  auto* box = static_cast<ChunkedBox*>(luaL_checkudata(L, 1, kChunkedClass));
  if (!box->dead) box->decoder.release();
  box->dead = true;
  return 0;
}

// --- WebSocket -------------------------------------------------------------------------------

const char* const kOpcodeNames[] = {"continuation", "text", "binary", "close",
                                    "ping",         "pong", nullptr};
const ws::Opcode kOpcodes[] = {ws::Opcode::kContinuation, ws::Opcode::kText, ws::Opcode::kBinary,
                               ws::Opcode::kClose,        ws::Opcode::kPing, ws::Opcode::kPong};

const char* opcode_name(ws::Opcode op) {
  for (int i = 0; kOpcodeNames[i]; ++i) {
    if (kOpcodes[i] == op) return kOpcodeNames[i];
  }
  return "?";
}

WsBox* check_ws(lua_State* L) { return static_cast<WsBox*>(luaL_checkudata(L, 1, kWsClass)); }

// core.ws_parser(role [, limits]) -> parser: role "server" (reads a client's masked frames) or
// "client"; limits max_payload (one frame) and max_message (all fragments of a message).
int core_ws_parser(lua_State* L) {
  static const char* const roles[] = {"server", "client", nullptr};
  const int role = luaL_checkoption(L, 1, nullptr, roles);
  static const char* const names[] = {"max_payload", "max_message", nullptr};
  lua_Integer v[] = {static_cast<lua_Integer>(ws::FrameParser::kDefaultMaxPayload),
                     static_cast<lua_Integer>(ws::MessageChecker::kDefaultMaxMessage)};
  const lua_Integer max[] = {LUA_MAXINTEGER, LUA_MAXINTEGER};
  read_limits(L, 2, names, max, v);
  auto* box = static_cast<WsBox*>(lua_newuserdatauv(L, sizeof(WsBox), 1));
  new (box) WsBox{};
  box->frames.init(role == 0 ? ws::Role::kServer : ws::Role::kClient, static_cast<uint64_t>(v[0]));
  box->messages.init(static_cast<uint64_t>(v[1]));
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, kWsClass);
  return 1;
}

// Pushes the frame that just ended: {opcode, fin, payload [, code, reason]}; its payload is the
// concatenation of the pieces in the table at `pieces`, which is emptied.
void push_frame(lua_State* L, WsBox* box, int pieces) {
  const ws::FrameHeader& h = box->frames.header();
  lua_createtable(L, 0, 5);
  lua_pushstring(L, opcode_name(h.opcode));
  lua_setfield(L, -2, "opcode");
  set_bool(L, "fin", h.fin);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= box->pieces; ++i) {
    lua_rawgeti(L, pieces, i);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  lua_setfield(L, -2, "payload");
  for (int i = box->pieces; i >= 1; --i) {
    lua_pushnil(L);
    lua_rawseti(L, pieces, i);
  }
  box->pieces = 0;
  if (h.opcode == ws::Opcode::kClose) {
    lua_pushinteger(L, box->messages.close_code());
    lua_setfield(L, -2, "code");
    set_string(L, "reason", box->messages.close_reason());
  }
}

// parser:feed(data) -> frames | nil, errname, close_code: every frame that `data` completes,
// in order, as {opcode = name, fin = boolean, payload = unmasked string, code, reason (close
// frames)}; the bytes of a frame not complete yet are kept for the next call.
int ws_feed(lua_State* L) {
  WsBox* box = check_ws(L);
  size_t n = 0;
  const char* p = luaL_checklstring(L, 2, &n);
  if (box->failed != ws::Error::kNone) {
    return push_fault(L, ws::error_name(box->failed), ws::error_close_code(box->failed));
  }
  lua_settop(L, 2);
  lua_getiuservalue(L, 1, 1);  // 3: the payload pieces
  lua_newtable(L);             // 4: the frames
  lua_Integer count = 0;
  size_t at = 0;
  for (;;) {
    const ws::FrameParser::Step s = box->frames.feed(p + at, n - at);
    const ws::FrameHeader& h = box->frames.header();
    at += s.consumed;
    ws::Error e = ws::Error::kNone;
    switch (s.event) {
      case ws::FrameParser::Event::kNeedMore:
        return 1;
      case ws::FrameParser::Event::kError:
        e = box->frames.error();
        break;
      case ws::FrameParser::Event::kHeader:
        e = box->messages.on_header(h);
        break;
      case ws::FrameParser::Event::kPayload: {
        luaL_Buffer b;
        char* out = luaL_buffinitsize(L, &b, s.size);
        ws::apply_mask(h.mask, s.offset, s.data, out, s.size);
        luaL_pushresultsize(&b, s.size);
        e = box->messages.on_payload(h, lua_tostring(L, -1), s.size);
        lua_rawseti(L, 3, ++box->pieces);
        break;
      }
    }
    if (e == ws::Error::kNone && s.end) {
      e = box->messages.on_frame_end(h);
      if (e == ws::Error::kNone) {
        push_frame(L, box, 3);
        lua_rawseti(L, 4, ++count);
      }
    }
    if (e != ws::Error::kNone) {
      // The connection is to be failed; the frames before the fault are dropped with it.
      box->failed = e;
      return push_fault(L, ws::error_name(e), ws::error_close_code(e));
    }
  }
}

// parser:reset() -> parser: forgets any partial frame and message.
int ws_reset(lua_State* L) {
  WsBox* box = check_ws(L);
  box->frames.reset();
  box->messages.reset();
  box->pieces = 0;
  box->failed = ws::Error::kNone;
  lua_newtable(L);
  lua_setiuservalue(L, 1, 1);
  lua_settop(L, 1);
  return 1;
}

// core.ws_frame(opcode, payload [, fin [, mask]]) -> string: one frame; `mask`, a 4-byte
// string, makes it a masked (client) frame.
int core_ws_frame(lua_State* L) {
  const ws::Opcode op = kOpcodes[luaL_checkoption(L, 1, nullptr, kOpcodeNames)];
  size_t n = 0;
  const char* payload = luaL_checklstring(L, 2, &n);
  const bool fin = lua_isnoneornil(L, 3) ? true : lua_toboolean(L, 3) != 0;
  size_t klen = 0;
  const char* key = luaL_optlstring(L, 4, nullptr, &klen);
  if (ws::is_control(op)) {
    if (n > 125) luaL_argerror(L, 2, "control frame payload over 125 bytes");
    if (!fin) luaL_argerror(L, 3, "control frames cannot be fragmented");
  }
  if (key && klen != 4) luaL_argerror(L, 4, "masking key must be 4 bytes");
  uint8_t mask[4] = {};
  if (key) std::memcpy(mask, key, 4);
  uint8_t head[ws::kMaxHeaderSize];
  const size_t h = ws::encode_header(head, fin, op, n, key ? mask : nullptr);
  luaL_Buffer b;
  char* out = luaL_buffinitsize(L, &b, h + n);
  std::memcpy(out, head, h);
  if (key) {
    ws::apply_mask(mask, 0, payload, out + h, n);
  } else {
    std::memcpy(out + h, payload, n);
  }
  luaL_pushresultsize(&b, h + n);
  return 1;
}

// core.accept_key(key) -> string: Sec-WebSocket-Accept for a Sec-WebSocket-Key.
int core_accept_key(lua_State* L) {
  size_t n = 0;
  const char* key = luaL_checklstring(L, 1, &n);
  char out[ws::kAcceptKeySize];
  ws::accept_key({key, n}, out);
  lua_pushlstring(L, out, sizeof(out));
  return 1;
}

// core.valid_key(key) -> boolean: whether a Sec-WebSocket-Key is the base64 of 16 bytes.
int core_valid_key(lua_State* L) {
  size_t n = 0;
  const char* key = luaL_checklstring(L, 1, &n);
  lua_pushboolean(L, ws::valid_client_key({key, n}));
  return 1;
}

int object_tostring(lua_State* L) {
  lua_getfield(L, lua_upvalueindex(1), "__name");
  lua_pushfstring(L, "%s: %p", lua_tostring(L, -1), lua_touserdata(L, 1));
  return 1;
}

// `nup` values on the stack become upvalues of every method (and are popped).
void new_class(lua_State* L, const char* name, const luaL_Reg* methods, lua_CFunction gc,
               int nup = 0) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  for (int i = 0; i < nup; ++i)
    lua_pushvalue(L, -2 - nup);
  luaL_setfuncs(L, methods, nup);
  lua_setfield(L, -2, "__index");
  if (gc) {
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, object_tostring, 1);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1 + nup);
}

const luaL_Reg kParserMethods[] = {
    {"feed", parser_feed}, {"next", parser_next}, {"reset", parser_reset}, {nullptr, nullptr}};
const luaL_Reg kChunkedMethods[] = {{"feed", chunked_feed},
                                    {"trailers", chunked_trailers},
                                    {"reset", chunked_reset},
                                    {nullptr, nullptr}};
const luaL_Reg kWsMethods[] = {{"feed", ws_feed}, {"reset", ws_reset}, {nullptr, nullptr}};
const luaL_Reg kFunctions[] = {
    {"parser", core_parser},     {"chunked", core_chunked},       {"ws_parser", core_ws_parser},
    {"ws_frame", core_ws_frame}, {"accept_key", core_accept_key}, {"valid_key", core_valid_key},
    {nullptr, nullptr}};

}  // namespace
}  // namespace uvs::http

// require("socket.http.core") -> the table of constructors and functions.
extern "C" __attribute__((visibility("default"))) int luaopen_socket_http_core(lua_State* L) {
  using namespace uvs::http;
  for (const char* key : kHeadKeys)
    lua_pushstring(L, key);
  new_class(L, kParserClass, kParserMethods, parser_gc, kKeyCount);
  new_class(L, kChunkedClass, kChunkedMethods, chunked_gc);
  new_class(L, kWsClass, kWsMethods, nullptr);
  luaL_newlib(L, kFunctions);
  return 1;
}
