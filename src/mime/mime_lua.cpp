// mime_lua.cpp: the Lua module mime.core (b64, unb64, qp, unqp, wrp, qpwrp, eol, dot), with
// LuaSocket 3.1's calling convention; luaopen_mime_core is the only exported symbol.
// Layer: binding over the pure codecs of codec.hpp (no uv.h).
//
// The functions are low-level filters meant for ltn12.filter.cycle: each takes the state the
// previous call returned and the next chunk, and returns its output and the new state. For the
// codecs the state is the input the previous call could not process yet (returned as a string
// and passed back in front of the next chunk: `A, B = f(C, D)` processes C..D); for the others
// it is a number. A nil chunk means the end of the data. Numbers come back as floats, as in
// LuaSocket.
//
// Output is built in a luaL_Buffer. The codec objects living on the C stack while it grows
// are trivially destructible, so a memory error raised from inside a flush skips nothing.
#include <cmath>

#include "lua/lua_api.hpp"
#include "mime/codec.hpp"

#define UVSOCKET_MIME_VERSION "MIME 1.0.3 (uvsocket 0.1.0)"

namespace uvs::mime {
namespace {

void add_to_buffer(void* ctx, const char* data, size_t n) {
  luaL_addlstring(static_cast<luaL_Buffer*>(ctx), data, n);
}

// A Lua number as a line count or state, the way LuaSocket casts it, but defined for every
// input: truncated toward zero, NaN as 0, and clamped far beyond any string length.
int64_t to_count(lua_Number x) {
  constexpr lua_Number kLimit = 9007199254740992.0;  // 2^53
  if (std::isnan(x)) return 0;
  if (x > kLimit) x = kLimit;
  if (x < -kLimit) x = -kLimit;
  return static_cast<int64_t>(x);
}

std::string_view opt_view(lua_State* L, int arg) {
  size_t n = 0;
  const char* s = luaL_optlstring(L, arg, nullptr, &n);
  return s ? std::string_view(s, n) : std::string_view();
}

// Replaces an empty string on the top of the stack with nil.
void empty_to_nil(lua_State* L) {
  if (lua_rawlen(L, -1) == 0) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
}

// The shared shape of b64, unb64, qp and unqp: A, B = f(C [, D]).
// C nil: nil, nil. D nil: the output of C with the codec finished (nil if empty), nil.
// Otherwise: the output of C..D and the input still held back.
template <class Codec>
int run_codec(lua_State* L, Codec& codec, bool finish) {
  size_t csize = 0;
  const char* c = luaL_optlstring(L, 1, nullptr, &csize);
  if (c == nullptr) {
    lua_pushnil(L);
    lua_pushnil(L);
    return 2;
  }
  size_t dsize = 0;
  const char* d = luaL_optlstring(L, 2, nullptr, &dsize);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  Output out(&add_to_buffer, &b);
  codec.update({c, csize}, out);
  if (d == nullptr) {
    if (finish) codec.finish(out);
    out.flush();
    luaL_pushresult(&b);
    empty_to_nil(L);
    lua_pushnil(L);
    return 2;
  }
  codec.update({d, dsize}, out);
  out.flush();
  luaL_pushresult(&b);
  const std::string_view held = codec.pending();
  lua_pushlstring(L, held.data(), held.size());
  return 2;
}

// Decoders have nothing to emit at the end: what they still hold is dropped.
template <class Decoder>
struct Unfinished : Decoder {
  void finish(Output&) {}
};

// mime.b64(C [, D]) -> A, B: base64 of the longest prefix of C..D that fills whole groups; with
// D nil, all of C, padded.
int mime_b64(lua_State* L) {
  Base64Encoder codec;
  return run_codec(L, codec, true);
}

// mime.unb64(C [, D]) -> A, B: the bytes of the complete groups of C..D.
int mime_unb64(lua_State* L) {
  Unfinished<Base64Decoder> codec;
  return run_codec(L, codec, false);
}

// mime.qp(C [, D [, marker]]) -> A, B: quoted-printable of C..D, CRLF written as `marker`
// (default CRLF).
int mime_qp(lua_State* L) {
  size_t msize = 0;
  const char* marker = luaL_optlstring(L, 3, "\r\n", &msize);
  QpEncoder codec({marker, msize});
  return run_codec(L, codec, true);
}

// mime.unqp(C [, D]) -> A, B: C..D with the quoted-printable encoding removed.
int mime_unqp(lua_State* L) {
  Unfinished<QpDecoder> codec;
  return run_codec(L, codec, false);
}

using WrapFn = int64_t (*)(int64_t, int64_t, std::string_view, Output&);

// The shared shape of wrp and qpwrp: A, m = f(n [, B [, length]]).
int run_wrap(lua_State* L, WrapFn wrap, std::string_view end_break) {
  const int64_t left = to_count(luaL_checknumber(L, 1));
  const std::string_view in = opt_view(L, 2);
  const bool at_end = lua_isnoneornil(L, 2);
  const int64_t length = to_count(luaL_optnumber(L, 3, 76));
  if (at_end) {
    if (wrap_needs_break(left, length)) {
      lua_pushlstring(L, end_break.data(), end_break.size());
    } else {
      lua_pushnil(L);
    }
    lua_pushnumber(L, static_cast<lua_Number>(length));
    return 2;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  Output out(&add_to_buffer, &b);
  const int64_t now = wrap(left, length, in, out);
  out.flush();
  luaL_pushresult(&b);
  lua_pushnumber(L, static_cast<lua_Number>(now));
  return 2;
}

// mime.wrp(n [, B [, length]]) -> A, m: B cut into lines of at most `length` bytes (default 76)
// with CRLF; n is the room left on the current line, m the same after B. With B nil: CRLF if a
// line was started (else nil), and `length`.
int mime_wrp(lua_State* L) { return run_wrap(L, &wrap_text, kCrlf); }

// mime.qpwrp(n [, B [, length]]) -> A, m: the same for quoted-printable, with soft breaks.
int mime_qpwrp(lua_State* L) { return run_wrap(L, &wrap_qp, kSoftBreak); }

// mime.eol(ctx [, B [, marker]]) -> A, ctx: B with each line break written as `marker`
// (default CRLF); ctx is the CR or LF byte that ended the previous chunk, or 0.
int mime_eol(lua_State* L) {
  const lua_Integer ctx = luaL_checkinteger(L, 1);
  const std::string_view in = opt_view(L, 2);
  const bool at_end = lua_isnoneornil(L, 2);
  size_t msize = 0;
  const char* marker = luaL_optlstring(L, 3, "\r\n", &msize);
  if (at_end) {
    lua_pushnil(L);
    lua_pushnumber(L, 0);
    return 2;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  Output out(&add_to_buffer, &b);
  const int64_t now = normalize_eol(ctx, in, {marker, msize}, out);
  out.flush();
  luaL_pushresult(&b);
  lua_pushnumber(L, static_cast<lua_Number>(now));
  return 2;
}

// mime.dot(state [, B]) -> A, state: B dot-stuffed; state 2 means "at the start of a line".
// With B nil: nil, 2.
int mime_dot(lua_State* L) {
  const int64_t state = to_count(luaL_checknumber(L, 1));
  const std::string_view in = opt_view(L, 2);
  if (lua_isnoneornil(L, 2)) {
    lua_pushnil(L);
    lua_pushnumber(L, 2);
    return 2;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  Output out(&add_to_buffer, &b);
  const int64_t now = stuff_dots(state, in, out);
  out.flush();
  luaL_pushresult(&b);
  lua_pushnumber(L, static_cast<lua_Number>(now));
  return 2;
}

const luaL_Reg kFunctions[] = {
    {"b64", mime_b64},   {"unb64", mime_unb64}, {"qp", mime_qp},
    {"unqp", mime_unqp}, {"wrp", mime_wrp},     {"qpwrp", mime_qpwrp},
    {"eol", mime_eol},   {"dot", mime_dot},     {nullptr, nullptr},
};

}  // namespace
}  // namespace uvs::mime

// require("mime.core") -> the mime namespace table; mime.lua adds the high-level filters to
// this same table.
extern "C" __attribute__((visibility("default"))) int luaopen_mime_core(lua_State* L) {
  luaL_newlib(L, uvs::mime::kFunctions);
  lua_pushliteral(L, UVSOCKET_MIME_VERSION);
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
