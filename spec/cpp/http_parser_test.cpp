// http_parser_test.cpp: the HTTP/1.1 head parser (src/http/parser.hpp): RFC 9112 examples,
// every fault, every limit at its boundary, what the fields mean, and the same result for
// every way of cutting a message into chunks.
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "http/parser.hpp"

using namespace uvs::http;

namespace {

const char* framing_name(Framing f) {
  switch (f) {
    case Framing::kNone:
      return "none";
    case Framing::kLength:
      return "length";
    case Framing::kChunked:
      return "chunked";
    case Framing::kClose:
      return "close";
  }
  return "?";
}

// Everything a parse tells, as text, so that two parses compare with one CHECK.
struct Outcome {
  Status status = Status::kNeedMore;
  Error error = Error::kNone;
  size_t consumed = 0;  // over all chunks
  std::string head;

  bool operator==(const Outcome& o) const {
    return status == o.status && error == o.error && consumed == o.consumed && head == o.head;
  }
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  return os << "status " << int(o.status) << ", error \"" << error_name(o.error) << "\", consumed "
            << o.consumed << ", head {" << o.head << "}";
}

std::string describe(const HeadParser& p) {
  std::string s;
  if (p.kind() == Kind::kRequest) {
    s += std::string(p.method()) + " " + std::string(p.target());
  } else {
    s += std::to_string(p.status()) + " [" + std::string(p.reason()) + "]";
  }
  s += " " + std::to_string(p.version_major()) + "." + std::to_string(p.version_minor()) + "\n";
  for (uint32_t i = 0; i < p.field_count(); ++i) {
    s += std::string(p.name(i)) + "|" + std::string(p.lower_name(i)) + "|" +
         std::string(p.value(i)) + "\n";
  }
  s += framing_name(p.framing());
  s += " " + std::to_string(p.content_length());
  s += p.keep_alive() ? " keep-alive" : " close";
  if (p.expect_continue()) s += " expect-continue";
  if (!p.upgrade().empty()) s += " upgrade=" + std::string(p.upgrade());
  return s;
}

// Feeds `msg` cut at `cuts` (ascending offsets) and stops at the first final status.
Outcome feed_cut(HeadParser& p, const std::string& msg, const std::vector<size_t>& cuts) {
  Outcome o;
  size_t at = 0;
  for (size_t k = 0; k <= cuts.size(); ++k) {
    const size_t end = k < cuts.size() ? cuts[k] : msg.size();
    size_t used = 0;
    o.status = p.feed(msg.data() + at, end - at, &used);
    REQUIRE(used <= end - at);
    o.consumed += used;
    if (o.status != Status::kNeedMore) break;
    REQUIRE(used == end - at);
    at = end;
  }
  REQUIRE(o.consumed == p.head_bytes());
  o.error = p.error();
  if (o.status == Status::kComplete) o.head = describe(p);
  return o;
}

Outcome parse(Kind kind, const std::string& msg, const Limits& limits = {},
              const std::vector<size_t>& cuts = {}) {
  Scoped<HeadParser> p;
  p.init(kind, limits);
  return feed_cut(p, msg, cuts);
}

Outcome request(const std::string& msg, const Limits& limits = {}) {
  return parse(Kind::kRequest, msg, limits);
}
Outcome response(const std::string& msg, const Limits& limits = {}) {
  return parse(Kind::kResponse, msg, limits);
}
Error request_error(const std::string& msg, const Limits& limits = {}) {
  const Outcome o = request(msg, limits);
  CHECK(o.status == Status::kError);
  return o.error;
}
Error response_error(const std::string& msg, const Limits& limits = {}) {
  const Outcome o = response(msg, limits);
  CHECK(o.status == Status::kError);
  return o.error;
}

// A parser kept for looking at fields after the parse.
struct Parsed {
  Scoped<HeadParser> p;
  Status status;
  size_t consumed = 0;
  Parsed(Kind kind, const std::string& msg, const Limits& limits = {}, bool no_body = false) {
    p.init(kind, limits);
    p.reset(no_body);
    status = p.feed(msg.data(), msg.size(), &consumed);
  }
};

const std::string kGet =
    "GET /hello.txt HTTP/1.1\r\n"
    "User-Agent: curl/7.64.1\r\n"
    "Host: www.example.com\r\n"
    "Accept-Language: en, mi\r\n"
    "\r\n";

const std::string kOk =
    "HTTP/1.1 200 OK\r\n"
    "Date: Mon, 27 Jul 2009 12:28:53 GMT\r\n"
    "Server: Apache\r\n"
    "Last-Modified: Wed, 22 Jul 2009 19:15:56 GMT\r\n"
    "ETag: \"34aa387-d-1568eb00\"\r\n"
    "Accept-Ranges: bytes\r\n"
    "Content-Length: 51\r\n"
    "Vary: Accept-Encoding\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n";
const std::string kOkBody = "Hello World! My content includes a trailing CRLF.\r\n";

}  // namespace

TEST_CASE("the RFC 9112 request example", "[http][parser]") {
  const std::string msg = kGet + "next";
  Parsed r(Kind::kRequest, msg);
  REQUIRE(r.status == Status::kComplete);
  CHECK(r.consumed == kGet.size());
  CHECK(r.p.method() == "GET");
  CHECK(r.p.target() == "/hello.txt");
  CHECK(r.p.version_major() == 1);
  CHECK(r.p.version_minor() == 1);
  REQUIRE(r.p.field_count() == 3);
  CHECK(r.p.name(0) == "User-Agent");
  CHECK(r.p.lower_name(0) == "user-agent");
  CHECK(r.p.value(0) == "curl/7.64.1");
  CHECK(r.p.value(1) == "www.example.com");
  CHECK(r.p.value(2) == "en, mi");
  CHECK(r.p.framing() == Framing::kNone);
  CHECK(r.p.keep_alive());
  CHECK_FALSE(r.p.expect_continue());
  CHECK(r.p.upgrade().empty());
  // A finished parser takes nothing more until reset.
  size_t used = 7;
  CHECK(r.p.feed("x", 1, &used) == Status::kComplete);
  CHECK(used == 0);
}

TEST_CASE("the RFC 9112 response example, with its body after the head", "[http][parser]") {
  const std::string msg = kOk + kOkBody;
  Parsed r(Kind::kResponse, msg);
  REQUIRE(r.status == Status::kComplete);
  CHECK(msg.substr(r.consumed) == kOkBody);
  CHECK(r.p.status() == 200);
  CHECK(r.p.reason() == "OK");
  CHECK(r.p.field_count() == 8);
  CHECK(r.p.value(3) == "\"34aa387-d-1568eb00\"");
  CHECK(r.p.framing() == Framing::kLength);
  CHECK(r.p.content_length() == kOkBody.size());
  CHECK(r.p.keep_alive());
}

TEST_CASE("the four forms of request-target", "[http][parser]") {
  const char* targets[][2] = {
      {"GET", "/where?q=now"},
      {"GET", "http://www.example.org/pub/WWW/TheProject.html"},
      {"CONNECT", "www.example.com:80"},
      {"OPTIONS", "*"},
  };
  for (const auto& t : targets) {
    Parsed r(Kind::kRequest,
             std::string(t[0]) + " " + t[1] + " HTTP/1.1\r\nHost: www.example.org\r\n\r\n");
    REQUIRE(r.status == Status::kComplete);
    CHECK(r.p.method() == t[0]);
    CHECK(r.p.target() == t[1]);
  }
}

TEST_CASE("request_path: the path of each form of request-target", "[http][parser]") {
  const char* cases[][2] = {
      {"/where?q=now", "/where"},
      {"/", "/"},
      {"/a?", "/a"},
      {"/a?b?c", "/a"},
      {"http://www.example.org/pub/WWW/TheProject.html", "/pub/WWW/TheProject.html"},
      {"http://h:8/p?q", "/p"},
      {"ab+c.d-e://h/p", "/p"},
      {"http://h", "http://h"},
      {"http://h?q/x", "http://h"},
      {"1x://h/p", "1x://h/p"},
      {"http:/h/p", "http:/h/p"},
      {"www.example.com:80", "www.example.com:80"},
      {"*", "*"},
      {"?q", ""},
      {"", ""},
  };
  for (const auto& c : cases) {
    CAPTURE(c[0]);
    CHECK(request_path(c[0]) == c[1]);
  }
}

TEST_CASE("field values lose their surrounding whitespace, keep inner whitespace and obs-text",
          "[http][parser]") {
  Parsed r(Kind::kRequest,
           "GET / HTTP/1.1\r\nHost: h\r\nX-A:value\r\nX-B: \t a \t b \t\r\nX-C:\r\n"
           "X-D: caf\xc3\xa9\r\nX-E:   \r\n\r\n");
  REQUIRE(r.status == Status::kComplete);
  CHECK(r.p.value(1) == "value");
  CHECK(r.p.value(2) == "a \t b");
  CHECK(r.p.value(3).empty());
  CHECK(r.p.value(4) == "caf\xc3\xa9");
  CHECK(r.p.value(5).empty());
}

TEST_CASE("repeated fields stay apart and in order, names as received", "[http][parser]") {
  Parsed r(Kind::kResponse,
           "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nCONTENT-length: 0\r\nset-cookie: b=2\r\n"
           "SET-COOKIE: c=3\r\n\r\n");
  REQUIRE(r.status == Status::kComplete);
  REQUIRE(r.p.field_count() == 4);
  CHECK(r.p.name(0) == "Set-Cookie");
  CHECK(r.p.name(2) == "set-cookie");
  CHECK(r.p.name(3) == "SET-COOKIE");
  for (uint32_t i : {0u, 2u, 3u})
    CHECK(r.p.lower_name(i) == "set-cookie");
  CHECK(r.p.lower_name(1) == "content-length");
  CHECK(r.p.value(0) == "a=1");
  CHECK(r.p.value(2) == "b=2");
  CHECK(r.p.value(3) == "c=3");
  CHECK(r.p.framing() == Framing::kLength);
}

TEST_CASE("empty lines before the start line are skipped", "[http][parser]") {
  const std::string msg = "\r\n\r\n" + kGet;
  Parsed r(Kind::kRequest, msg);
  REQUIRE(r.status == Status::kComplete);
  CHECK(r.consumed == msg.size());
  CHECK(r.p.method() == "GET");
  // They count toward the start line's limit.
  Limits l;
  l.max_start_line = 3;
  CHECK(request_error("\r\n\r\nGET / HTTP/1.1\r\n", l) == Error::kUriTooLong);
}

TEST_CASE("a reset parser reads the next message, and a response to HEAD has no body",
          "[http][parser]") {
  Scoped<HeadParser> p;
  p.init(Kind::kResponse, {});
  const std::string two =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
  size_t used = 0;
  REQUIRE(p.feed(two.data(), two.size(), &used) == Status::kComplete);
  CHECK(p.status() == 100);
  CHECK(p.framing() == Framing::kNone);
  p.reset();
  size_t used2 = 0;
  REQUIRE(p.feed(two.data() + used, two.size() - used, &used2) == Status::kComplete);
  CHECK(used + used2 == two.size());
  CHECK(p.status() == 200);
  CHECK(p.framing() == Framing::kLength);
  CHECK(p.content_length() == 5);
  p.reset(true);
  REQUIRE(p.feed(two.data() + used, two.size() - used, &used2) == Status::kComplete);
  CHECK(p.framing() == Framing::kNone);
}

TEST_CASE("body framing of requests", "[http][parser]") {
  const std::string start = "POST /f HTTP/1.1\r\nHost: h\r\n";
  {
    Parsed r(Kind::kRequest, start + "Content-Length: 0\r\n\r\n");
    CHECK(r.p.framing() == Framing::kLength);
    CHECK(r.p.content_length() == 0);
  }
  {
    Parsed r(Kind::kRequest, start + "Content-Length: 9223372036854775807\r\n\r\n");
    REQUIRE(r.status == Status::kComplete);
    CHECK(r.p.content_length() == 9223372036854775807ull);
  }
  {
    Parsed r(Kind::kRequest, start + "Content-Length: 007\r\nContent-Length: 7\r\n\r\n");
    REQUIRE(r.status == Status::kComplete);
    CHECK(r.p.content_length() == 7);
  }
  {
    Parsed r(Kind::kRequest, start + "Content-Length: 42, 42\r\n\r\n");
    REQUIRE(r.status == Status::kComplete);
    CHECK(r.p.content_length() == 42);
  }
  for (const char* te : {"chunked", "CHUNKED", " chunked ", ", chunked", "chunked,"}) {
    Parsed r(Kind::kRequest, start + "Transfer-Encoding:" + te + "\r\n\r\n");
    INFO(te);
    REQUIRE(r.status == Status::kComplete);
    CHECK(r.p.framing() == Framing::kChunked);
  }
  Parsed none(Kind::kRequest, start + "\r\n");
  CHECK(none.p.framing() == Framing::kNone);
}

TEST_CASE("body framing of responses", "[http][parser]") {
  auto framing = [](const std::string& msg, bool head = false) {
    Parsed r(Kind::kResponse, msg, {}, head);
    REQUIRE(r.status == Status::kComplete);
    return r.p.framing();
  };
  CHECK(framing("HTTP/1.1 200 OK\r\n\r\n") == Framing::kClose);
  CHECK(framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") == Framing::kChunked);
  CHECK(framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") ==
        Framing::kChunked);
  // A response whose last coding is not chunked runs until the connection closes.
  CHECK(framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n") == Framing::kClose);
  CHECK(framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n") == Framing::kClose);
  for (const char* s :
       {"101 Switching Protocols", "103 Early Hints", "204 No Content", "304 Not Modified"}) {
    INFO(s);
    CHECK(framing(std::string("HTTP/1.1 ") + s + "\r\nContent-Length: 10\r\n\r\n") ==
          Framing::kNone);
  }
  CHECK(framing("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true) == Framing::kNone);
  CHECK(framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true) == Framing::kNone);
}

TEST_CASE("status lines", "[http][parser]") {
  Parsed bare(Kind::kResponse, "HTTP/1.1 404\r\n\r\n");
  REQUIRE(bare.status == Status::kComplete);
  CHECK(bare.p.status() == 404);
  CHECK(bare.p.reason().empty());
  Parsed empty_reason(Kind::kResponse, "HTTP/1.0 599 \r\n\r\n");
  REQUIRE(empty_reason.status == Status::kComplete);
  CHECK(empty_reason.p.status() == 599);
  CHECK(empty_reason.p.version_minor() == 0);
  Parsed spaced(Kind::kResponse, "HTTP/1.1 500 Internal \tServer Error\r\n\r\n");
  CHECK(spaced.p.reason() == "Internal \tServer Error");
  CHECK(response("HTTP/1.1 100 x\r\n\r\n").status == Status::kComplete);
}

TEST_CASE("keep-alive", "[http][parser]") {
  auto keep = [](Kind kind, const std::string& msg) {
    Parsed r(kind, msg);
    REQUIRE(r.status == Status::kComplete);
    return r.p.keep_alive();
  };
  CHECK(keep(Kind::kRequest, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  CHECK_FALSE(keep(Kind::kRequest, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
  CHECK_FALSE(keep(Kind::kRequest, "GET / HTTP/1.1\r\nHost: h\r\nConnection: x, CLOSE\r\n\r\n"));
  CHECK_FALSE(keep(Kind::kRequest,
                   "GET / HTTP/1.1\r\nHost: h\r\nConnection: a\r\nConnection: Close\r\n\r\n"));
  CHECK_FALSE(keep(Kind::kRequest, "GET / HTTP/1.0\r\n\r\n"));
  CHECK(keep(Kind::kRequest, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
  CHECK_FALSE(keep(Kind::kRequest, "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
  // A later HTTP/1 minor version is taken as 1.1.
  CHECK(keep(Kind::kRequest, "GET / HTTP/1.9\r\nHost: h\r\n\r\n"));
  CHECK(keep(Kind::kResponse, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
  CHECK(keep(Kind::kResponse,
             "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
             "Content-Length: 0\r\n\r\n"));
  CHECK_FALSE(keep(Kind::kResponse, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
  // A body that runs until close ends the connection.
  CHECK_FALSE(keep(Kind::kResponse, "HTTP/1.1 200 OK\r\n\r\n"));
}

TEST_CASE("Expect: 100-continue", "[http][parser]") {
  auto expect = [](const std::string& msg) {
    Parsed r(Kind::kRequest, msg);
    REQUIRE(r.status == Status::kComplete);
    return r.p.expect_continue();
  };
  CHECK(expect("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"));
  CHECK(expect("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n\r\n"));
  CHECK_FALSE(expect("PUT / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n"));
  // An HTTP/1.0 client cannot wait for 100 Continue (RFC 9110 section 10.1.1).
  CHECK_FALSE(expect("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"));
  Parsed resp(Kind::kResponse, "HTTP/1.1 200 OK\r\nExpect: 100-continue\r\n\r\n");
  CHECK_FALSE(resp.p.expect_continue());
}

TEST_CASE("Upgrade", "[http][parser]") {
  auto upgrade = [](Kind kind, const std::string& msg) {
    Parsed r(kind, msg);
    REQUIRE(r.status == Status::kComplete);
    return std::string(r.p.upgrade());
  };
  CHECK(upgrade(Kind::kRequest,
                "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                "Connection: keep-alive, Upgrade\r\n\r\n") == "websocket");
  // Without "Connection: upgrade" the field is only informative.
  CHECK(upgrade(Kind::kRequest, "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n").empty());
  // An HTTP/1.0 request cannot upgrade (RFC 9110 section 7.8).
  CHECK(
      upgrade(Kind::kRequest, "GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n")
          .empty());
  CHECK(upgrade(Kind::kRequest,
                "GET / HTTP/1.1\r\nHost: h\r\nUpgrade:\r\nConnection: upgrade\r\n\r\n")
            .empty());
  CHECK(upgrade(Kind::kResponse,
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\n\r\n") == "websocket");
  CHECK(upgrade(Kind::kResponse,
                "HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nConnection: upgrade\r\n"
                "Content-Length: 0\r\n\r\n")
            .empty());
}

TEST_CASE("malformed request lines", "[http][parser]") {
  CHECK(request_error("GET\r\n") == Error::kBadRequestLine);
  CHECK(request_error("GET /\r\n") == Error::kBadRequestLine);  // HTTP/0.9
  CHECK(request_error(" GET / HTTP/1.1\r\n") == Error::kBadRequestLine);
  CHECK(request_error("G(T / HTTP/1.1\r\n") == Error::kBadMethod);
  CHECK(request_error("GE\tT / HTTP/1.1\r\n") == Error::kBadMethod);
  CHECK(request_error("GET\t/ HTTP/1.1\r\n") == Error::kBadRequestLine);
  CHECK(request_error("GET  / HTTP/1.1\r\n") == Error::kBadTarget);
  CHECK(request_error("GET /a\tb HTTP/1.1\r\n") == Error::kBadTarget);
  CHECK(request_error("GET /caf\xc3\xa9 HTTP/1.1\r\n") == Error::kBadTarget);
  CHECK(request_error("GET / HTTP/1.1 \r\n") == Error::kBadVersion);
  CHECK(request_error("GET /  HTTP/1.1\r\n") == Error::kBadVersion);
  CHECK(request_error("GET / HTTP/11\r\n") == Error::kBadVersion);
  CHECK(request_error("GET / http/1.1\r\n") == Error::kBadVersion);
  CHECK(request_error("GET / HTTP/1.x\r\n") == Error::kBadVersion);
  CHECK(request_error("GET / HTTP/1.10\r\n") == Error::kBadVersion);
  CHECK(request_error("GET / HTTP/2.0\r\n") == Error::kVersionNotSupported);
  CHECK(request_error("GET / HTTP/0.9\r\n") == Error::kVersionNotSupported);
}

TEST_CASE("malformed status lines", "[http][parser]") {
  CHECK(response_error("HTTP/1.1\r\n") == Error::kBadStatusLine);
  CHECK(response_error("ICY 200 OK\r\n") == Error::kBadStatusLine);
  CHECK(response_error("HTTP/1.1 20\r\n") == Error::kBadStatus);
  CHECK(response_error("HTTP/1.1 2000 OK\r\n") == Error::kBadStatus);
  CHECK(response_error("HTTP/1.1 099 OK\r\n") == Error::kBadStatus);
  CHECK(response_error("HTTP/1.1 600 OK\r\n") == Error::kBadStatus);
  CHECK(response_error("HTTP/1.1  200 OK\r\n") == Error::kBadStatus);
  CHECK(response_error("HTTP/1.1 2x0 OK\r\n") == Error::kBadStatus);
  CHECK(response_error("HTTP/1.a 200 OK\r\n") == Error::kBadVersion);
  CHECK(response_error("HTTP/3.0 200 OK\r\n") == Error::kVersionNotSupported);
}

TEST_CASE("line endings: bare CR and bare LF, where they stop", "[http][parser]") {
  Outcome o = request("GET / HTTP/1.1\n");
  CHECK(o.error == Error::kBareLf);
  CHECK(o.consumed == 14);
  o = request("GET / HTTP/1.1\rX");
  CHECK(o.error == Error::kBareCr);
  CHECK(o.consumed == 15);
  CHECK(request_error("GET / HT\rTP/1.1\r\n") == Error::kBareCr);
  CHECK(request_error("GET / HTTP/1.1\r\nHost: h\n\r\n") == Error::kBareLf);
  CHECK(request_error("GET / HTTP/1.1\r\nHost: h\r\n\n") == Error::kBareLf);
  CHECK(request_error("GET / HTTP/1.1\r\nHost: h\r\n\r\r\n") == Error::kBareCr);
  CHECK(request_error("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n") == Error::kBareCr);
  // A CR at the very end of a chunk waits for the next one.
  Scoped<HeadParser> p;
  p.init(Kind::kRequest, {});
  size_t used = 0;
  CHECK(p.feed("GET / HTTP/1.1\r", 15, &used) == Status::kNeedMore);
  CHECK(used == 15);
  CHECK(p.feed("x", 1, &used) == Status::kError);
  CHECK(used == 0);
  CHECK(p.error() == Error::kBareCr);
  CHECK(p.feed("\n", 1, &used) == Status::kError);  // errors stick until reset
}

TEST_CASE("control bytes anywhere in the head", "[http][parser]") {
  CHECK(request_error(std::string("GET /\0 HTTP/1.1\r\n", 17)) == Error::kControlByte);
  CHECK(request_error("\x16\x03\x01") == Error::kControlByte);  // a TLS hello
  CHECK(request_error("GET / HTTP/1.1\r\nHost: h\x7f\r\n\r\n") == Error::kControlByte);
  CHECK(request_error("GET / HTTP/1.1\r\nHost: a\x01z\r\n\r\n") == Error::kControlByte);
  CHECK(request_error("GET / HTTP/1.1\r\nX\x1b: 1\r\n\r\n") == Error::kControlByte);
  CHECK(response_error("HTTP/1.1 200 O\x0bK\r\n\r\n") == Error::kControlByte);
  const Outcome o = request(std::string("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 29));
  CHECK(o.error == Error::kControlByte);
  CHECK(o.consumed == 23);
}

TEST_CASE("malformed field lines", "[http][parser]") {
  const std::string start = "GET / HTTP/1.1\r\nHost: h\r\n";
  CHECK(request_error(start + "Name value\r\n\r\n") == Error::kBadHeaderName);
  CHECK(request_error(start + ": value\r\n\r\n") == Error::kBadHeaderName);
  CHECK(request_error(start + "Na(me: value\r\n\r\n") == Error::kBadHeaderName);
  CHECK(request_error(start + "Na me: value\r\n\r\n") == Error::kBadHeaderName);
  CHECK(request_error(start + "Name\r\n\r\n") == Error::kBadHeaderName);
  CHECK(request_error(start + "Name : value\r\n\r\n") == Error::kSpaceBeforeColon);
  CHECK(request_error(start + "Name\t: value\r\n\r\n") == Error::kSpaceBeforeColon);
  CHECK(request_error(start + "X: a\r\n b\r\n\r\n") == Error::kObsFold);
  CHECK(request_error(start + "X: a\r\n\tb\r\n\r\n") == Error::kObsFold);
  CHECK(request_error("GET / HTTP/1.1\r\n Host: h\r\n\r\n") == Error::kObsFold);
  CHECK(response_error("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n") == Error::kObsFold);
}

TEST_CASE("Content-Length faults", "[http][parser]") {
  const std::string start = "POST / HTTP/1.1\r\nHost: h\r\n";
  for (const char* v : {"", "-1", "+1", "1a", "0x10", "1 2", "1,", ",1", "1,,1", "1.0",
                        "9223372036854775808", "99999999999999999999999"}) {
    INFO(v);
    CHECK(request_error(start + "Content-Length: " + v + "\r\n\r\n") == Error::kBadContentLength);
  }
  CHECK(request_error(start + "Content-Length: 1\r\nContent-Length: 2\r\n\r\n") ==
        Error::kConflictingLength);
  CHECK(request_error(start + "Content-Length: 1, 2\r\n\r\n") == Error::kConflictingLength);
  CHECK(response_error("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n") ==
        Error::kConflictingLength);
  CHECK(response_error("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n") == Error::kBadContentLength);
}

TEST_CASE("Transfer-Encoding faults", "[http][parser]") {
  const std::string start = "POST / HTTP/1.1\r\nHost: h\r\n";
  auto te = [&](const std::string& v) {
    return request_error(start + "Transfer-Encoding: " + v + "\r\n\r\n");
  };
  CHECK(request_error(start + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n") ==
        Error::kLengthAndEncoding);
  CHECK(request_error(start + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n") ==
        Error::kLengthAndEncoding);
  CHECK(response_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                       "Content-Length: 3\r\n\r\n") == Error::kLengthAndEncoding);
  CHECK(te("chunked, chunked") == Error::kBadTransferEncoding);
  CHECK(request_error(start + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n") ==
        Error::kBadTransferEncoding);
  CHECK(te("chunked, gzip") == Error::kBadTransferEncoding);
  CHECK(te("chunked;q=1") == Error::kBadTransferEncoding);
  CHECK(te("chun ked") == Error::kBadTransferEncoding);
  CHECK(te("") == Error::kBadTransferEncoding);
  CHECK(te(",") == Error::kBadTransferEncoding);
  CHECK(te("gzip") == Error::kUnsupportedCoding);
  CHECK(te("gzip, chunked") == Error::kUnsupportedCoding);
  CHECK(te("x-custom;a=b, chunked") == Error::kUnsupportedCoding);
  CHECK(request_error("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") ==
        Error::kBadTransferEncoding);
  CHECK(response_error("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") ==
        Error::kBadTransferEncoding);
  CHECK(response_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n") ==
        Error::kBadTransferEncoding);
}

TEST_CASE("Host: exactly one in an HTTP/1.1 request", "[http][parser]") {
  CHECK(request_error("GET / HTTP/1.1\r\n\r\n") == Error::kMissingHost);
  CHECK(request_error("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n") == Error::kDuplicateHost);
  CHECK(request("GET / HTTP/1.0\r\n\r\n").status == Status::kComplete);
  CHECK(request("GET / HTTP/1.1\r\nHost:\r\n\r\n").status == Status::kComplete);
  CHECK(response("HTTP/1.1 204 No Content\r\n\r\n").status == Status::kComplete);
}

TEST_CASE("every error has a name and a status code", "[http][parser]") {
  CHECK(error_status(Error::kBadMethod) == 400);
  CHECK(error_status(Error::kObsFold) == 400);
  CHECK(error_status(Error::kUriTooLong) == 414);
  CHECK(error_status(Error::kHeaderLineTooLong) == 431);
  CHECK(error_status(Error::kTooManyHeaders) == 431);
  CHECK(error_status(Error::kHeadersTooLarge) == 431);
  CHECK(error_status(Error::kUnsupportedCoding) == 501);
  CHECK(error_status(Error::kVersionNotSupported) == 505);
  CHECK(error_status(Error::kChunkTooLarge) == 413);
  CHECK(error_status(Error::kBadStatus) == 502);
  CHECK(error_status(Error::kNoMemory) == 500);
  CHECK(error_status(Error::kNone) == 0);
  CHECK(std::string(error_name(Error::kNone)).empty());
  for (int e = 1; e <= static_cast<int>(Error::kNoMemory); ++e) {
    const std::string name = error_name(static_cast<Error>(e));
    CHECK_FALSE(name.empty());
    CHECK(name != "unknown error");
    CHECK(error_status(static_cast<Error>(e)) >= 400);
  }
}

TEST_CASE("the start-line limit at its boundary", "[http][parser][limits]") {
  const std::string line = "GET /0123456789 HTTP/1.1";
  const std::string msg = line + "\r\nHost: h\r\n\r\n";
  Limits l;
  l.max_start_line = static_cast<uint32_t>(line.size());
  CHECK(request(msg, l).status == Status::kComplete);
  l.max_start_line -= 1;
  const Outcome o = request(msg, l);
  CHECK(o.error == Error::kUriTooLong);
  CHECK(o.consumed == line.size() - 1);
  CHECK(error_status(o.error) == 414);
  const std::string status = "HTTP/1.1 200 OK";
  l.max_start_line = static_cast<uint32_t>(status.size());
  CHECK(response(status + "\r\n\r\n", l).status == Status::kComplete);
  l.max_start_line -= 1;
  CHECK(response_error(status + "\r\n\r\n", l) == Error::kStatusLineTooLong);
}

TEST_CASE("the field-line limit at its boundary", "[http][parser][limits]") {
  const std::string field = "X-Long: " + std::string(100, 'v');
  const std::string msg = "GET / HTTP/1.1\r\nHost: h\r\n" + field + "\r\n\r\n";
  Limits l;
  l.max_header_line = static_cast<uint32_t>(field.size());
  CHECK(request(msg, l).status == Status::kComplete);
  l.max_header_line -= 1;
  const Outcome o = request(msg, l);
  CHECK(o.error == Error::kHeaderLineTooLong);
  CHECK(o.consumed == msg.size() - 5);
  // Trailing whitespace counts: the limit is on the line as received.
  l.max_header_line = static_cast<uint32_t>(field.size());
  CHECK(request_error("GET / HTTP/1.1\r\nHost: h\r\n" + field + " \r\n\r\n", l) ==
        Error::kHeaderLineTooLong);
}

TEST_CASE("the field-count limit at its boundary", "[http][parser][limits]") {
  const std::string msg = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
  Limits l;
  l.max_headers = 3;
  CHECK(request(msg, l).status == Status::kComplete);
  l.max_headers = 2;
  const Outcome o = request(msg, l);
  CHECK(o.error == Error::kTooManyHeaders);
  CHECK(o.consumed == msg.size() - 8);  // stops at the first byte of the third field
  l.max_headers = 0;
  CHECK(response("HTTP/1.1 200 OK\r\n\r\n", l).status == Status::kComplete);
  CHECK(response_error("HTTP/1.1 200 OK\r\nA: 1\r\n\r\n", l) == Error::kTooManyHeaders);
}

TEST_CASE("the field-section byte limit at its boundary", "[http][parser][limits]") {
  const std::string fields = "Host: h\r\nA: 123\r\nBbbb: 45678\r\n";
  const std::string msg = "GET / HTTP/1.1\r\n" + fields + "\r\n";
  Limits l;
  l.max_header_bytes = static_cast<uint32_t>(fields.size());
  CHECK(request(msg, l).status == Status::kComplete);
  l.max_header_bytes -= 1;
  const Outcome o = request(msg, l);
  CHECK(o.error == Error::kHeadersTooLarge);
  CHECK(o.consumed == msg.size() - 5);  // the last byte of the last field would not fit
  CHECK(error_status(o.error) == 431);
  l.max_header_bytes = 0;
  CHECK(response("HTTP/1.1 200 OK\r\n\r\n", l).status == Status::kComplete);
  CHECK(response_error("HTTP/1.1 200 OK\r\nA: 1\r\n\r\n", l) == Error::kHeadersTooLarge);
}

TEST_CASE("limits are clamped to kMaxLimit", "[http][parser][limits]") {
  Scoped<HeadParser> p;
  p.init(Kind::kRequest, Limits{UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX});
  CHECK(p.limits().max_start_line == kMaxLimit);
  CHECK(p.limits().max_header_bytes == kMaxLimit);
}

TEST_CASE("storage that cannot grow is a fault, not a crash", "[http][parser]") {
  struct Budget {
    size_t left;
  };
  AllocFn fn = [](void* ud, void* ptr, size_t, size_t nsize) -> void* {
    auto* b = static_cast<Budget*>(ud);
    if (nsize == 0) {
      std::free(ptr);
      return nullptr;
    }
    if (nsize > b->left) return nullptr;
    return std::realloc(ptr, nsize);
  };
  Budget budget{100};
  Scoped<HeadParser> p;
  p.init(Kind::kRequest, {}, Allocator{fn, &budget});
  const std::string msg = "GET /" + std::string(200, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n";
  size_t used = 0;
  CHECK(p.feed(msg.data(), msg.size(), &used) == Status::kError);
  CHECK(p.error() == Error::kNoMemory);
  CHECK(used < 100);
}

namespace {

// Valid and faulty messages that the split tests go through.
const std::vector<std::pair<Kind, std::string>>& corpus() {
  static const std::vector<std::pair<Kind, std::string>> c = {
      {Kind::kRequest, kGet},
      {Kind::kRequest, "\r\n" + kGet + "body"},
      {Kind::kRequest,
       "POST /upload?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n"
       "Expect: 100-continue\r\nConnection: keep-alive\r\n\r\nhello"},
      {Kind::kRequest, "POST / HTTP/1.1\r\nhost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {Kind::kRequest,
       "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
       "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
       "Sec-WebSocket-Version: 13\r\n\r\n"},
      {Kind::kRequest, "GET / HTTP/1.0\r\nX:\r\nY: \t\r\nConnection: keep-alive\r\n\r\n"},
      {Kind::kResponse, kOk + kOkBody},
      {Kind::kResponse,
       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
       "Connection: Upgrade\r\n"
       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"},
      {Kind::kResponse, "HTTP/1.0 404\r\n\r\n"},
      // Faults.
      {Kind::kRequest, "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n"},
      {Kind::kRequest, "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"},
      {Kind::kRequest,
       "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"},
      {Kind::kRequest, std::string("GET / HTTP/1.1\r\nHost: \0\r\n\r\n", 27)},
      {Kind::kRequest, "GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"},
      {Kind::kRequest, "GET / HTTP/3.0\r\n\r\n"},
      {Kind::kResponse, "HTTP/1.1 200 OK\r\nA : b\r\n\r\n"},
      {Kind::kResponse, "HTTP/1.1 2000\r\n\r\n"},
  };
  return c;
}

}  // namespace

TEST_CASE("every split in two or three pieces gives the same result as the whole",
          "[http][parser][split]") {
  for (const auto& [kind, msg] : corpus()) {
    INFO(msg);
    const Outcome whole = parse(kind, msg);
    for (size_t i = 0; i <= msg.size(); ++i) {
      REQUIRE(parse(kind, msg, {}, {i}) == whole);
      for (size_t j = i; j <= msg.size(); j += 3)
        REQUIRE(parse(kind, msg, {}, {i, j}) == whole);
    }
  }
}

TEST_CASE("byte-by-byte and random splits give the same result as the whole",
          "[http][parser][split]") {
  std::mt19937 rng(1234);
  for (const auto& [kind, msg] : corpus()) {
    INFO(msg);
    const Outcome whole = parse(kind, msg);
    std::vector<size_t> every;
    for (size_t i = 1; i < msg.size(); ++i)
      every.push_back(i);
    CHECK(parse(kind, msg, {}, every) == whole);
    for (int round = 0; round < 50; ++round) {
      std::vector<size_t> cuts;
      for (size_t at = 0;;) {
        at += rng() % 12;
        if (at >= msg.size()) break;
        cuts.push_back(at);
      }
      REQUIRE(parse(kind, msg, {}, cuts) == whole);
    }
  }
}

TEST_CASE("limits fail at the same byte whatever the split", "[http][parser][split]") {
  Limits small{20, 12, 3, 30};
  for (const auto& [kind, msg] : corpus()) {
    INFO(msg);
    const Outcome whole = parse(kind, msg, small);
    for (size_t i = 0; i <= msg.size(); ++i)
      REQUIRE(parse(kind, msg, small, {i}) == whole);
  }
}
