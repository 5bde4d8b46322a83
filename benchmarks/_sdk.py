"""The peer: Microsoft's official ``msgraph-beta-sdk`` (Kiota-generated), used the way
its documentation shows.

The Python SDK has no ``commsNotifications`` model (the C# Communications SDK has one),
so a bot on it writes the envelope itself: :class:`SdkCommsNotifications` and
:class:`SdkCommsNotification` below are those two classes in the generator's own
style, and ``resourceData`` is read as the SDK's ``CommsOperation``, whose
discriminator picks ``PlayPromptOperation``.

Import this module only after :func:`benchmarks._peers.available` said yes.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SdkCommsNotification",
    "SdkCommsNotifications",
    "notification_parser",
    "play_prompt_client",
]


def _sdk(module: str) -> Any:
    # The SDK ships no type information (no py.typed): its names are Any here.
    return importlib.import_module(f"msgraph_beta.{module}")


_PLAY_PROMPT = "generated.communications.calls.item.play_prompt"

with warnings.catch_warnings():
    # Generated request builders warn at import about their own deprecated classes;
    # importing them here keeps that out of the measured rounds and out of the output.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kiota_abstractions.authentication import (
        AccessTokenProvider,
        AllowedHostsValidator,
        BaseBearerTokenAuthenticationProvider,
    )
    from kiota_abstractions.serialization import (
        AdditionalDataHolder,
        Parsable,
        ParseNode,
        SerializationWriter,
    )
    from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory

    GraphRequestAdapter = _sdk("graph_request_adapter").GraphRequestAdapter
    GraphServiceClient = _sdk("graph_service_client").GraphServiceClient
    PlayPromptPostRequestBody = _sdk(
        f"{_PLAY_PROMPT}.play_prompt_post_request_body"
    ).PlayPromptPostRequestBody
    _sdk(f"{_PLAY_PROMPT}.play_prompt_request_builder")
    CommsOperation = _sdk("generated.models.comms_operation").CommsOperation
    MediaInfo = _sdk("generated.models.media_info").MediaInfo
    MediaPrompt = _sdk("generated.models.media_prompt").MediaPrompt


@dataclass
class SdkCommsNotification(AdditionalDataHolder, Parsable):
    additional_data: dict[str, Any] = field(default_factory=dict)
    change_type: str | None = None
    resource_url: str | None = None
    resource_data: object = None  # the SDK's CommsOperation (a PlayPromptOperation here)

    @staticmethod
    def create_from_discriminator_value(parse_node: ParseNode) -> SdkCommsNotification:
        return SdkCommsNotification()

    def get_field_deserializers(self) -> dict[str, Callable[[ParseNode], None]]:
        return {
            "changeType": lambda n: setattr(self, "change_type", n.get_str_value()),
            "resourceUrl": lambda n: setattr(self, "resource_url", n.get_str_value()),
            "resourceData": lambda n: setattr(
                self, "resource_data", n.get_object_value(CommsOperation)
            ),
        }

    def serialize(self, writer: SerializationWriter) -> None:
        raise NotImplementedError("only read here")


@dataclass
class SdkCommsNotifications(AdditionalDataHolder, Parsable):
    additional_data: dict[str, Any] = field(default_factory=dict)
    value: list[SdkCommsNotification] | None = None

    @staticmethod
    def create_from_discriminator_value(parse_node: ParseNode) -> SdkCommsNotifications:
        return SdkCommsNotifications()

    def get_field_deserializers(self) -> dict[str, Callable[[ParseNode], None]]:
        return {
            "value": lambda n: setattr(
                self, "value", n.get_collection_of_object_values(SdkCommsNotification)
            ),
        }

    def serialize(self, writer: SerializationWriter) -> None:
        raise NotImplementedError("only read here")


def notification_parser() -> Callable[[bytes], list[SdkCommsNotification]]:
    """Bytes in, the SDK's models out, through its JSON parse-node factory."""
    factory = JsonParseNodeFactory()

    def parse(body: bytes) -> list[SdkCommsNotification]:
        root = factory.get_root_parse_node("application/json", body)
        return root.get_object_value(SdkCommsNotifications).value or []

    return parse


class _StaticToken(AccessTokenProvider):
    def __init__(self, token: str) -> None:
        self._token = token

    async def get_authorization_token(
        self, uri: str, additional_authentication_context: dict[str, Any] | None = None
    ) -> str:
        return self._token

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return AllowedHostsValidator([])


def play_prompt_client(
    base_url: str, token: str, call_id: str, prompt_uri: str
) -> tuple[Callable[[str], Awaitable[object]], Callable[[], Awaitable[None]]]:
    """``(post, aclose)``: ``await post(client_context)`` is the SDK's documented
    ``client.communications.calls.by_call_id(id).play_prompt.post(body)`` with its
    default middleware, against ``base_url`` (``http://host:port/beta``)."""
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(_StaticToken(token)))
    adapter.base_url = base_url
    client = GraphServiceClient(request_adapter=adapter)

    async def post(context: str) -> object:
        body = PlayPromptPostRequestBody(
            prompts=[MediaPrompt(media_info=MediaInfo(uri=prompt_uri))],
            client_context=context,
        )
        operation = await client.communications.calls.by_call_id(call_id).play_prompt.post(body)
        if operation is None or operation.status is None:
            raise RuntimeError("the SDK read no operation from the answer")
        return operation

    async def aclose() -> None:
        await adapter._http_client.aclose()

    return post, aclose
