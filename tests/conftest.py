# The real-server fixtures (llama-server, LiteLLM, the recording proxy) for every test.
pytest_plugins = ["tests.realservers.fixtures"]
