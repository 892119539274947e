"""The start-up check of a model server: is it there, and does it serve the model asked for?

`demo.py --vlm-url URL` runs this once, before anything else loads, and exits 2 with its one
line when the answer is no. It asks the server's model list (GET /v1/models). A server that
lists nothing (`transformers serve` pinned to a local folder lists only its hub cache) is
asked a one-token chat completion instead, which it refuses for a model it does not have.
"""
from __future__ import annotations

from pipelines.remote_vlm import API_KEY_ENV, base_url, explain, host_of, make_client, server_detail

LISTED = 8  # model names quoted in a message at most


def resolve_model(url: str, model: str | None, api_key_env: str = API_KEY_ENV,
                  timeout: float = 30.0) -> tuple[str, str | None]:
    """(the model to ask for, the one-line problem or None).

    Without a model name, the server's only model is taken; with several (or none listed), the
    problem asks for --vlm NAME and quotes what the server lists."""
    try:
        url = base_url(url)
    except ValueError as err:
        return model or "", str(err)
    host = host_of(url)
    try:
        client = make_client(url, api_key_env, timeout, min(5.0, timeout))
    except Exception as err:  # noqa: BLE001 - ModelUnavailable: the openai package is missing
        return model or "", str(err)
    try:
        ids = listed_models(client, url, host, timeout)
        if not model:
            if len(ids) == 1:
                return ids[0], None
            listing = f" (it lists: {_quoted(ids)})" if ids else " (it lists none)"
            return "", f"name the served model with --vlm NAME{listing}"
        if model in ids:
            return model, None
        if ids:
            return model, f"the VLM server at {host} has no model {model!r} (it lists: {_quoted(ids)})"
        return model, _probe(client, model, host, timeout)
    except _Problem as problem:
        return model or "", str(problem)
    finally:
        client.close()


def check_server(url: str, model: str | None, api_key_env: str = API_KEY_ENV, timeout: float = 30.0) -> str | None:
    """The one-line problem with `url` and `model`, or None when the server can answer with it."""
    return resolve_model(url, model, api_key_env, timeout)[1]


class _Problem(Exception):
    pass


def listed_models(client, url: str, host: str, timeout: float) -> list[str]:
    """The ids in GET {url}/models, in the server's order."""
    import openai

    try:
        return [m.id for m in client.models.list()]
    except openai.NotFoundError:
        raise _Problem(f"the VLM server at {host} has no {url.rstrip('/')}/models: give --vlm-url as the API's "
                       "base, e.g. http://HOST:PORT/v1") from None
    except openai.OpenAIError as err:
        raise _Problem(explain(err, host, timeout)) from None


def _probe(client, model: str, host: str, timeout: float) -> str | None:
    """A one-token completion: None when the server answers it with `model`, else the problem."""
    import openai

    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello"}], max_tokens=1,
                                       temperature=0)
    except openai.APIStatusError as err:
        if 400 <= err.status_code < 500 and err.status_code not in (401, 403):
            return (f"the VLM server at {host} lists no models and refused model {model!r}: "
                    f"{server_detail(err.body) or err.status_code}")
        return explain(err, host, timeout)
    except openai.OpenAIError as err:
        return explain(err, host, timeout)
    return None


def _quoted(ids: list[str]) -> str:
    more = f", and {len(ids) - LISTED} more" if len(ids) > LISTED else ""
    return ", ".join(repr(i) for i in ids[:LISTED]) + more
