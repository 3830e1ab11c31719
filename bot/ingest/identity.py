"""Which lead an event belongs to: userId, else e-mail, else the anonymous visitor.

Identity keys are ``user:<userId>``, ``email:<address>`` and ``anon:<anonymousId>``. A lead's
id is its userId, else its e-mail; an anonymous visitor is ``anon:<anonymousId>`` until an
identify or alias carrying both ids folds it into the known lead, whether its pages came in
earlier transactions or earlier in the same one. Later events with that anonymousId, or with
it and a new e-mail, count for the person; a new userId stays a person of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.ingest.inbound import InboundEvent

ANON_PREFIX = "anon:"


def identity_keys(event: InboundEvent) -> list[str]:
    """Every key that may already name this event's lead."""
    keys = []
    if event.user_id:
        keys.append(f"user:{event.user_id}")
    if event.email:
        keys.append(f"email:{event.email}")
    if event.anonymous_id:
        keys.append(f"anon:{event.anonymous_id}")
    if event.previous_id:
        keys += [f"anon:{event.previous_id}", f"user:{event.previous_id}"]
    return keys


@dataclass
class Resolver:
    """Assigns lead ids to the events of one transaction, in arrival order.

    ``known`` starts as the stored identity map and learns as it goes; ``links`` are the new
    keys to store; ``merges`` the (anonymous lead, known lead) pairs to fold together.
    """

    known: dict[str, str]
    links: dict[str, str] = field(default_factory=dict)
    merges: list[tuple[str, str]] = field(default_factory=list)

    def _link(self, key: str, lead_id: str) -> None:
        if key not in self.known:
            self.known[key] = lead_id
            self.links[key] = lead_id

    def _absorb(self, key: str, lead_id: str) -> None:
        """Point ``key`` at ``lead_id``; if it named an anonymous visitor, merge that in."""
        current = self.known.get(key)
        if current is None:
            self._link(key, lead_id)
        elif current != lead_id and current.startswith(ANON_PREFIX):
            self.merges.append((current, lead_id))
            # Stored keys of the visitor move with its lead (``absorb_lead``); keys first seen
            # in this transaction are stored after the merge, so they must name the person
            # now, or ``anon:X`` would be stored pointing at a lead that no longer exists.
            for mapping in (self.known, self.links):
                for k, v in list(mapping.items()):
                    if v == current:
                        mapping[k] = lead_id

    def _person_of(self, event: InboundEvent) -> str | None:
        """The known person this event's anonymous id already belongs to. A new e-mail from an
        identified visitor (a form filled in after login) is theirs; a new userId is not taken
        this way, since a userId names one person and browsers are shared."""
        for anon in (event.anonymous_id, event.previous_id):
            lead_id = self.known.get(f"anon:{anon}") if anon else None
            if lead_id is not None and not lead_id.startswith(ANON_PREFIX):
                return lead_id
        return None

    def assign(self, event: InboundEvent) -> str:
        user_key = f"user:{event.user_id}" if event.user_id else None
        email_key = f"email:{event.email}" if event.email else None
        lead_id = None
        if event.previous_id:  # alias: the previous id may be an old userId
            lead_id = self.known.get(f"user:{event.previous_id}")
        for key in (user_key, email_key):
            if lead_id is None and key is not None:
                lead_id = self.known.get(key)
        if lead_id is None and not event.user_id:
            lead_id = self._person_of(event)
        if lead_id is None:
            lead_id = event.user_id or event.email
        if lead_id is None:  # anonymous only
            anon_key = f"anon:{event.anonymous_id}"
            lead_id = self.known.get(anon_key, ANON_PREFIX + str(event.anonymous_id))
            self._link(anon_key, lead_id)
            return lead_id
        for key in (user_key, email_key):
            if key is not None:
                self._link(key, lead_id)
        for anon in (event.anonymous_id, event.previous_id):
            if anon:
                self._absorb(f"anon:{anon}", lead_id)
        return lead_id
