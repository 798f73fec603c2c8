"""`tierwise up SPEC`: the continuum for real on this machine, measured against the plan.

Modules, one idea each:

    run.py           the run from start to end: plan, build, start, deploy, stream, report
    layout.py        what runs where: per feature its placement, packages and site traffic
    deploy.py        packages built (scenario cache), uploaded, assigned per the plan
    components.py    starting the cloud, a WAN proxy, an edge agent, a site's devices
    processes.py     the supervisor: process groups, PDEATHSIG, stop everything on exit
    wan_schedule.py  `--wan`: delay, loss, outages on a schedule; the run's WAN for the plan
    scale.py         measured capacity of this machine and the scaled rates
    devices.py       one site's devices as a process (`python -m tierwise.up.devices`)
    http_client.py   the devices' bare keep-alive HTTP client (cheap next to what it measures)
    device_stats.py  what the devices saw: latency, misses, who answered and why
    stream.py        while devices stream: one start, outages on schedule, the live view
    live.py          the live view's table and log lines
    report.py        run.json and the plan-vs-measured table
    commands.py      `tierwise up`: its options and the run.json and table it writes

No names at package level: `tierwise up` and `run.run_up` are the ways in.
"""

__all__: list[str] = []
