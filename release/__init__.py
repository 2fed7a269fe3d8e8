"""Release decisions beyond one run: A/B load tests (`tollgate ab`) and canary analysis (`tollgate canary`).

`release.ab` drives two servers through loadgen's public run API (`loadgen.cli.run_load`);
`release.canary` reads the monitor store through `tollgate.contracts.monitor_store` or Prometheus'
HTTP API. Both judge with `release.stats`.
"""
