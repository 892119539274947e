"""The router on a table of phrasings: every skill the app builds, in the app's order.

A request goes to a skill when it fits and to the VLM otherwise: general questions about the
view ("what colour is this shirt?", "what brand is this?") stay the model's, product questions
are shopping's ("how much is this shirt?"), and "what is this?" is shopping's only while
shopping mode stands. Skill switches ("shopping mode", "stop translating") ask nothing.
"""
import pytest

from pipelines.app.memory import open_memory
from pipelines.app.skills import build_skills, open_catalog
from pipelines.router import route

TABLE = [  # (question, standing skill, who takes it: a skill, "vlm", or "switch" for a VLM mode switch)
    ('what colour is this shirt?', '', 'vlm'),
    ('how much is this shirt?', '', 'shopping'),
    ('how much is this?', '', 'shopping'),
    ('what is this?', '', 'vlm'),
    ('what is this?', 'shopping', 'shopping'),
    ("what's this?", 'shopping', 'shopping'),
    ('is this good?', 'shopping', 'shopping'),
    ('does this contain nuts?', 'shopping', 'shopping'),
    ('what colour is this?', 'shopping', 'vlm'),
    ('what does this cost?', '', 'shopping'),
    ("what's the price of this?", '', 'shopping'),
    ('price check', '', 'shopping'),
    ('compare with the last one', '', 'shopping'),
    ('is this cheaper than the last one?', '', 'shopping'),
    ('add this to my list', '', 'shopping'),
    ('add milk to my shopping list', '', 'shopping'),
    ('put eggs on my list', '', 'shopping'),
    ("what's on my list?", '', 'shopping'),
    ("what's on my shopping list?", '', 'shopping'),
    ('read my shopping list', '', 'shopping'),
    ('remove milk', '', 'shopping'),
    ('remove milk from my list', '', 'shopping'),
    ('take milk off my list', '', 'shopping'),
    ('clear my list', '', 'shopping'),
    ('scan this barcode', '', 'shopping'),
    ("what's this barcode?", '', 'shopping'),
    ('shopping mode', '', 'shopping'),
    ('help me shop', '', 'shopping'),
    ('start shopping', '', 'shopping'),
    ('stop shopping', '', 'shopping'),
    ('exit shopping mode', '', 'shopping'),
    ('read this', '', 'reading'),
    ('read this to me', '', 'reading'),
    ('what does this say?', '', 'reading'),
    ('what does it say?', '', 'reading'),
    ('what does this sign say?', '', 'reading'),
    ('what does this label mean?', '', 'reading'),
    ('what does this sign say in English?', '', 'reading'),
    ('translate this sign', '', 'reading'),
    ('translate this menu into English', '', 'reading'),
    ('can you read that?', '', 'reading'),
    ('read the text', '', 'reading'),
    ("what's written here?", '', 'reading'),
    ('what is written on this?', '', 'reading'),
    ('set a timer for 5 minutes', '', 'timers'),
    ('timer 90 seconds', '', 'timers'),
    ('set a 10 minute timer', '', 'timers'),
    ('wake me in half an hour', '', 'timers'),
    ('remind me to call mum at 6 pm', '', 'timers'),
    ('remind me in 20 minutes to take the pizza out', '', 'timers'),
    ('remind me at 18:30 to water the plants', '', 'timers'),
    ('remind me tomorrow at 9 to call the bank', '', 'timers'),
    ('what timers do I have?', '', 'timers'),
    ('how long is left on my timer?', '', 'timers'),
    ('cancel the timer', '', 'timers'),
    ('cancel my reminder', '', 'timers'),
    ('what time is it?', '', 'vlm'),
    ('take a photo', '', 'capture'),
    ('take a picture', '', 'capture'),
    ('snap a photo of this', '', 'capture'),
    ('record a video for ten seconds', '', 'capture'),
    ('record a 30 second video', '', 'capture'),
    ('start recording', '', 'capture'),
    ('stop recording', '', 'capture'),
    ("what's in this photo?", '', 'vlm'),
    ('translate what they say', '', 'translate'),
    ('translate for me', '', 'translate'),
    ('stop translating', '', 'translate'),
    ('where did I leave my keys?', '', 'memory'),
    ('where did I put my phone?', '', 'memory'),
    ('have you seen my wallet?', '', 'memory'),
    ('what did the sign say earlier?', '', 'memory'),
    ('what was I doing an hour ago?', '', 'memory'),  # a time ago, not a timer
    ('remember that my locker is 7', '', 'memory'),
    ('remember my parking spot is B12', '', 'memory'),
    ('what do you remember about me?', '', 'memory'),
    ('forget that', '', 'memory'),
    ('forget everything', '', 'memory'),
    ('when did I last see my glasses?', '', 'memory'),
    ('what is that building?', '', 'vlm'),
    ('describe what you see', '', 'vlm'),
    ('who is this person?', '', 'vlm'),
    ('what kind of dog is this?', '', 'vlm'),
    ('is this ripe?', '', 'vlm'),
    ('how many apples are there?', '', 'vlm'),
    ('what brand is this?', '', 'vlm'),
    ('what brand is this?', 'shopping', 'shopping'),
    ('how do I cook this?', '', 'vlm'),
    ('what should I cook with these?', '', 'vlm'),
    ('think harder, how much is this?', '', 'vlm'),
    ('quick answer', '', 'switch'),
    ('think harder', '', 'switch'),
    ('can you tell me what this is?', '', 'vlm'),
    ("what's that on the table?", '', 'vlm'),
    ('is the stove on?', '', 'vlm'),
    ('where is the exit?', '', 'vlm'),
    ('what does this button do?', '', 'vlm'),
    ('how much does it weigh?', '', 'vlm'),
    ('how much time do I have?', '', 'vlm'),
    ('how much is left in the bottle?', '', 'vlm'),
    ("what's the weather like?", '', 'vlm'),
    ('tell me a joke', '', 'vlm'),
    ('read my messages', '', 'vlm'),
    ("what's my list of tasks?", '', 'vlm'),
    ('add a reminder to my calendar', '', 'timers'),
    ('can you remember what this is called?', '', 'vlm'),
    ("what's the name of this plant?", '', 'vlm'),
    ('how old is this building?', '', 'vlm'),
    ('how far is the station?', '', 'vlm'),
    ('is this gluten free?', 'shopping', 'shopping'),
    ('is this gluten free?', '', 'vlm'),
    ('how many calories in this?', '', 'vlm'),
    ("what's the price per kilo?", '', 'shopping'),
]


@pytest.fixture(scope="module")
def skills(tmp_path_factory):
    folder = tmp_path_factory.mktemp("router")
    memory = open_memory(folder / "memory", 7.0, [])
    built = build_skills(None, folder / "out", open_catalog(None), memory, blur=False, realtime=True)
    yield built.skills
    built.close()
    memory.close()


def test_the_table_is_large_and_covers_every_skill():
    assert len(TABLE) >= 100
    assert {who for _, _, who in TABLE} >= {"vlm", "shopping", "reading", "timers", "capture", "memory", "translate"}


@pytest.mark.parametrize("question, active, who", TABLE)
def test_who_takes_each_phrasing(skills, question, active, who):
    r = route(question, "instant", skills, active=active)
    taken = "switch" if (r.switch and r.target == "vlm") else (r.name if r.target == "skill" else "vlm")
    assert taken == who, f"{question!r} ({active or 'no standing skill'}): {r.reason}"


@pytest.mark.parametrize("question, seen, who", [
    ("what is this?", {"barcode"}, "shopping"),  # a product held up: its price, not a description
    ("what am I holding?", {"barcode"}, "shopping"),
    ("is this gluten free?", {"barcode"}, "shopping"),
    ("what is this?", set(), "vlm"),
    ("what colour is this?", {"barcode"}, "vlm"),  # a general question stays the model's
    ("who is this?", {"barcode"}, "vlm"),
    ("read this", {"barcode"}, "reading"),  # the words decide first
])
def test_what_the_camera_sees_routes_generic_product_questions(skills, question, seen, who):
    looked = []
    r = route(question, "instant", skills, look=lambda: looked.append(1) or frozenset(seen))
    assert (r.name if r.target == "skill" else "vlm") == who, r.reason


def test_no_look_for_questions_no_skill_could_take_by_sight(skills):
    looked = []
    route("what's the weather like?", "instant", skills, look=lambda: looked.append(1) or frozenset())
    route("set a timer for 5 minutes", "instant", skills, look=lambda: looked.append(1) or frozenset())
    assert looked == []  # a look reads the camera: only when the words could go that way
