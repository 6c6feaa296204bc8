"""Choosing an identity-LoRA checkpoint by measurement (``pulid-studio sweep``).

* :mod:`.checkpoints`: the trainer's saved checkpoints in a folder, in step order (stdlib only);
* :mod:`.recommend`: the documented recommendation rule over per-step means (pure Python);
* :mod:`.clip_score`: prompt adherence and memorization with an open_clip model from a local file;
* :mod:`.table`: ``sweep.csv`` rows and the per-checkpoint summary;
* :mod:`.curve`, :mod:`.strips`, :mod:`.report`: ``curve.png``, ``strips/<tag>.png``, ``report.md``
  and the ready ablation spec;
* :mod:`.scoring`: every image scored (identity with two engines, CLIP score, memorization).

Nothing is imported here, so the torch-free client can use :mod:`.checkpoints` and :mod:`.recommend`.
"""
