"""Attack (and benign look-alike) stories: scenario steps turned into events, state and ground truth.

`engine` resolves actors, places the story in time and records what each step emitted; the
`*_actions` modules register one function per scenario action (see README.md, 'Story actions').
"""

from simulator.stories import (
    conversation_actions,
    google_actions,
    m365_actions,
    m365_token_actions,
    okta_actions,
    slack_actions,
)
from simulator.stories.engine import ACTIONS, StoryBuilder, StoryOutput

__all__ = [
    "ACTIONS",
    "StoryBuilder",
    "StoryOutput",
    "conversation_actions",
    "google_actions",
    "m365_actions",
    "m365_token_actions",
    "okta_actions",
    "slack_actions",
]
