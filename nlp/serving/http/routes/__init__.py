"""The API's routes, one module per concern, each adding its routes to the app `make_app`
builds: the web page and its files (`page`), liveness, metrics and the model list
(`status`), headlines (`headlines`), chat (`chat`) and attention pictures (`attention`)."""
