"""The learning loop's cloud side: a drift verdict becomes a retrained, packaged, staged rollout.

`Learner` (loop.py) watches the cloud's drift verdicts. When a feature has drifted at some
sites it waits a short while for those sites to gather labelled field rows, then retrains
the edge model where the spec says its data may be used (`retrain.py`: centralized on the
raw examples the sites were allowed to send; `federated.py`: on Flower across the drifted
sites, whose rows never leave them), packages the result with a drift yardstick rebased on
the sites' summaries (`publish.py`), and rolls it out to the drifted sites alone, the first
one as the canary, gated on its live accuracy. docs/learning.md tells the whole loop.
"""
