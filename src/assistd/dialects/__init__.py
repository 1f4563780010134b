"""Wire dialects at the edge: other protocols, translated into the v2 services.

- ``azure``: the Azure OpenAI wire (``/openai/...?api-version=...``, the ``api-key`` header),
  rewritten onto the ``/v1`` routes with the Assistants dialect its API version speaks.
- ``v1``: Assistants v1 (``OpenAI-Beta: assistants=v1``): routes that translate v1 bodies into
  v2 service calls and render the v2 objects in v1 shapes (``file_ids``, ``retrieval``,
  assistant and message files).

One module (or package) per dialect. Routers, services and repositories know nothing of them:
every object lives once, in its v2 form, and reads the same through every dialect.
"""
