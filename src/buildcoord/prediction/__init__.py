"""Build-duration prediction: a bottom layer of pure Python that knows nothing of the store.

``predictor`` turns a chronological history of finished builds into a p50 and a p10-p90 band;
``jenkins`` is the estimator it is compared with; ``replay`` and ``scoring`` replay a history
file under the no-look-ahead protocol of ``docs/prediction.md``.
"""
