"""Framework integrations. ``faramesh.integrations.langchain`` needs the ``langchain`` extra
(``pip install "faramesh-sdk[langchain]"``)."""
