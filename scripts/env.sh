# Source this file to use the staged build from a shell: . scripts/env.sh [build-dir]
_uvs_dir=$(cd "$(dirname "${BASH_SOURCE:-$0}")/.." && pwd)/${1:-build}/stage
export LUA_PATH="$_uvs_dir/share/lua/5.4/?.lua;$_uvs_dir/share/lua/5.4/?/init.lua;;"
export LUA_CPATH="$_uvs_dir/lib/lua/5.4/?.so;;"
unset _uvs_dir
