-- support/gcstress.lua: loaded before busted when UVSOCKET_GC_STRESS is set (run_spec.sh). The
-- incremental collector with a 1 % pause (a new cycle starts as soon as one ends; 0 would mean
-- "leave it as it is"), a step multiplier of 1000 % and a step every kilobyte allocated: an object
-- that becomes unreachable is collected within about a hundred allocations even in a large heap,
-- in the main thread and in every task alike (the parameters are the state's, where a debug hook
-- would be per coroutine). A C function that keeps a pointer to a Lua value without a reference
-- to it then meets a freed object, which the specs, the sanitizer or valgrind see. It costs the
-- specs about 25 times their Lua CPU time.
collectgarbage("incremental", 1, 1000, 10)
