"""tltutor — a transfer-learning course that is also a library.

Start here
----------
The lessons are the notebooks in ``nbs/`` (``tltutor list`` prints them in learning order; open them in
JupyterLab with ``bash scripts/course.sh lab``). The library is exported from them, one module per notebook,
in layers — a module imports only the ones above it:

- ``tltutor.core``: the scale switch (``TLTUTOR_SCALE=quick|full``), device choice, seeding, where files live.
- ``tltutor.data``: offline datasets (MNIST, digits, MNIST-M-style, Fashion-MNIST, Rotten Tomatoes, VADER),
  domain pairs with a shift dial, few-shot splits, loaders.
- ``tltutor.models``: pretrained MobileNetV2 and MiniLM, GloVe, the small networks the lessons train from scratch
  (``small_cnn``, ``FeatureClassifier``, ``feature_cnn``), new heads, freezing by depth, learning-rate groups.
- ``tltutor.train``: ``fit`` / ``evaluate`` / ``predict``, the one training loop; metrics.
- ``tltutor.divergence``, ``tltutor.stats``, ``tltutor.transferability``: domain distances; means over seeds
  with intervals and the course's effect rule; scores that rank source models before fine-tuning.
- Transfer methods, by concept: ``finetune`` (vision strategies: cut, cache features, train the head, unfreeze),
  ``regularize`` (L2-SP, how far fine-tuning moved each layer), ``text`` (NLP), ``adapters`` (bottleneck
  adapters for CNNs and transformers, LoRA through ``peft``), ``adapt`` (MMD, CORAL, DANN), ``negative``
  (the negative transfer gap and the decision), ``instance`` (importance weights, TrAdaBoost), ``multitask``
  (shared trunks, task weights), ``compress`` (distillation, pruning), ``taxonomy`` (the settings and
  ``recommend_strategy``).

A first transfer — fine-tune ImageNet MobileNetV2 on 500 handwritten digits, test on the rest::

    from tltutor.data import load_digits, tensor_loader, to_rgb
    from tltutor.models import mobilenet_v2, replace_head
    from tltutor.train import fit, evaluate
    x, y = load_digits(); net = mobilenet_v2(input_size=32); replace_head(net, 10)
    fit(net, tensor_loader(to_rgb(x[:500]), y[:500], bs=32, shuffle=True), epochs=3, lr=1e-3)
    evaluate(net, tensor_loader(to_rgb(x[500:]), y[500:], bs=256))   # {'accuracy': ..., ...}

``help(fn)`` on any public function describes it and its parameters; each module's notebook explains why.
"""
__version__ = "0.1.0"
