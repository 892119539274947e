"""Personal memory: what the glasses saw, and what the wearer told them, kept on this machine.

Off unless a session is given `--memory DIR`. Then the glasses keep a private log of what the
camera saw ("where did I leave my keys?") and the facts the wearer asks them to remember ("my
parking spot is B12"), in one SQLite file in DIR that only its owner can read.

The parts, and who calls what:

- `keyframes.py`: which camera frames are worth keeping (scene change, sharp, well exposed, at
  most one every few seconds). Pure functions and a small `KeyframePicker`.
- `describe.py`: the `Describer`. The session (pipelines/session.py, which owns the threads)
  calls `pick` with the camera's frames and `describe_next` while nothing else goes on: the
  VLM writes a short caption of the kept keyframe, OCR reads its text where installed, and a
  thumbnail with faces blurred (pipelines/faces.py) is made; then the entry is stored. The
  session calls `interrupt` whenever the wearer speaks, asks or presses a button, so a
  description never delays an answer; one keyframe waits at most, and the rest are skipped
  and counted.
- `store.py`: the `MemoryStore` (schema.py: its file format and the checks that refuse a file
  that is not ours; query.py: questions made into safe full-text queries, BM25 plus recency).
- `skill.py`: the `MemorySkill`, a router skill (pipelines/router.py). It answers questions
  about the past from the store with the evidence on the display and the entry ids in the turn
  record, says "I didn't see that." when nothing fits, and keeps, lists and forgets facts.
  `recall.py` and `prompt.py` hold its decisions and its wording as pure functions.
- `cli.py`: `demo.py memory DIR list|search|show|forget` for the wearer to see and manage all
  of it.

pipelines/app/memory.py assembles these for a session: it opens the store (retention at
start-up; the describer repeats it hourly), builds the describer on the session's VLM, passes
the skill, the describer and the facts that bear on each question (added to an ordinary
answer's system prompt) to the Session, turns the capture light on with a "faces blurred"
badge, and the session's `end` record counts the keyframes kept, skipped and described and the
entries stored.
"""
