"""The activities' use cases, over the storage port (:mod:`.ports`): each loads through the port, decides in the
domain, and writes with its events; no web framework, no database driver.

- :mod:`.activities`: create, revise, publish, start, complete, cancel, publicity, read, list;
- :mod:`.signups`: sign up (group-committed by :mod:`.batches`), cancel, approve/reject, fill from the waitlist, roster;
- :mod:`.attendance`: check in/out by code or by an organiser, corrections of hours, records, the check-in code;
- :mod:`.demands`: the demand library; :mod:`.volunteers`: the local copy of volunteers; :mod:`.repair`: the sweep.
"""
