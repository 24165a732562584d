-- support/tls.lua: test certificates, made with the openssl command when a spec first asks
-- (nothing secret is committed), in a temporary directory removed when the state closes.
--
--   certs().dir  the directory; files <name>.pem and <name>.key for
--     ca        the test CA (trusted through cafile = certs().ca)
--     server    CN=localhost, subjectAltName DNS:localhost, IP:127.0.0.1, valid now
--     expired   the same names, valid in January 2020 only
--     other     CN=other.example (a certificate for another host)
--     client    a client certificate ("test client")
--   All leaves are signed by the CA.
local M = {}

-- In the sanitizer build the specs run with the sanitizer runtimes preloaded; openssl must not
-- inherit them (its leak report at exit would abort it).
local PLAIN = os.getenv("LD_PRELOAD") and "env -u LD_PRELOAD " or ""

local function sh(cmd)
  local p = assert(io.popen(PLAIN .. cmd, "r"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

local SCRIPT = [[
set -e
cd "$1"
cat > ca.cnf <<'X'
[ca]
default_ca = c
[c]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = p
copy_extensions = copy
unique_subject = no
[p]
commonName = supplied
[v3_ca]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = CA:false
keyUsage = digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
X
: > index.txt
echo 1000 > serial
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
key ca
openssl req -x509 -key ca.key -out ca.pem -days 30 -subj /CN=uvsocket-test-CA \
  -config ca.cnf -extensions v3_ca 2>/dev/null
leaf() {
  key "$1"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2" -addext "subjectAltName=$3" \
    2>/dev/null
  openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -extensions leaf \
    -startdate "$4" -enddate "$5" -in "$1.csr" -out "$1.pem" -notext 2>/dev/null
}
now=$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)
later=$(date -u -d '+20 days' +%Y%m%d%H%M%SZ)
leaf server localhost "DNS:localhost,IP:127.0.0.1" "$now" "$later"
leaf expired localhost "DNS:localhost,IP:127.0.0.1" 20200101000000Z 20200201000000Z
leaf other other.example "DNS:other.example" "$now" "$later"
leaf client "test client" "DNS:client.example" "$now" "$later"
echo made
]]

local made

function M.certs()
  if made then return made end
  local dir = sh("mktemp -d /tmp/uvs-certs-XXXXXX"):gsub("%s+$", "")
  local script = dir .. "/make.sh"
  local f = assert(io.open(script, "w"))
  f:write(SCRIPT)
  f:close()
  local out = sh("sh '" .. script .. "' '" .. dir .. "' 2>&1")
  assert(out:find("made"), "making the test certificates failed:\n" .. out)
  made = { dir = dir, ca = dir .. "/ca.pem" }
  for _, name in ipairs({ "server", "expired", "other", "client" }) do
    made[name] = { certificate = dir .. "/" .. name .. ".pem", key = dir .. "/" .. name .. ".key" }
  end
  made.guard = setmetatable({}, { __gc = function() os.execute("rm -rf '" .. dir .. "'") end })
  return made
end

-- LuaSec, or nil when it is not installed (its specs are then pending).
function M.luasec()
  local ok, ssl = pcall(require, "ssl")
  if ok and type(ssl) == "table" and ssl.wrap then return ssl end
  return nil
end

return M
