"""Federated training across sites on Flower: `tierwise federate`.

Raw data stays at each site; only model parameters and a few metrics cross the WAN.
The pieces, from the outside in:

- `runner.run_federated` provisions the sites, starts the federation, runs and follows it;
- `deployment.Federation`: a Flower SuperLink, and per site a SuperNode plus a long-lived
  ClientApp process (`site_node`, `site_worker`), all real processes on 127.0.0.1;
- `server_app` / `rounds`: the cloud's round loop over Flower's strategies (`strategies`),
  SecAgg+ (`secagg`), DP accounting and update compression (`compression`);
- `client_app`: what runs at a site, reading only that site's shard (`sitedata`);
- `progress`: the run's event log, which the CLI turns into a progress bar and reports.

Heavy imports (Flower, scikit-learn) happen in these submodules, never in this package's
`__init__`, so `tierwise[edge]` never needs them; for the same reason it exports no names:
`tierwise federate` and `runner.run_federated` are the ways in.
"""

__all__: list[str] = []
