"""The strands mesh wire contract (CONTRACT.md) as code: keys and payload schemas.

Pure Python (pydantic); importing it never imports zenoh or rclpy.
"""

from .keys import InvalidPeerId, KeySpace, ParsedKey, check_peer_id
from .payloads import (
    ACTIONS,
    MAX_COMMAND_BYTES,
    CommandEnvelope,
    ContractError,
    EStop,
    EStopAck,
    Presence,
    Response,
    Resume,
    State,
    Step,
    decode,
    make_presence,
    make_response,
    new_turn_id,
)

__all__ = [
    "ACTIONS", "MAX_COMMAND_BYTES", "CommandEnvelope", "ContractError", "EStop", "EStopAck",
    "InvalidPeerId", "KeySpace", "ParsedKey", "Presence", "Response", "Resume", "State", "Step",
    "check_peer_id", "decode", "make_presence", "make_response", "new_turn_id",
]
