"""Agent tests (a package so daemon/CLI tests can share `agent_harness`, as tests/hub does)."""
