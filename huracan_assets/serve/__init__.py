"""``huracan serve``: the model service of the live side (``app.py``), its models (``models.py``) and inputs
(``inputs.py``)."""
