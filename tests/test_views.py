"""Contemplating's views as pure functions: which looks K agents get, and which images they share."""
import numpy as np

from core.messages import FrameSnapshot
from pipelines.views import build_views, detail_boxes, other_moments
from pipelines.vision import exposure, fit_for_model, same_view, sharpness

START, END = 1.0, 2.6  # the question's speech window


def scene(t: float, turned_before: float | None = None) -> np.ndarray:
    """A grey wall with a red square; a fine checkerboard (the detail) in the bottom-right corner;
    a small bar moves (the scene is alive, but the view is the same). Before `turned_before` the
    wearer was looking elsewhere: a dark wall with a blue square on the left."""
    img = np.full((240, 320, 3), 128, np.uint8)
    if turned_before is not None and t < turned_before:
        img[:] = 40
        img[60:180, 20:120] = (255, 0, 0)
        return img
    img[80:160, 120:200] = (0, 0, 255)
    img[180:236, 250:316] = (np.indices((56, 66)).sum(axis=0) % 2 * 255)[..., None]
    img[5:10, int(t * 50) % 300: int(t * 50) % 300 + 10] = 255
    return img


def ring(turned_before: float | None = None) -> list[FrameSnapshot]:
    out = []
    for t in np.arange(0.0, 3.01, 0.1):
        img = scene(float(t), turned_before)
        out.append(FrameSnapshot(float(t), img, sharpness(img), exposure(img)))
    return out


def views_for(k: int, frames: list[FrameSnapshot]):
    best = frames[25]  # t = 2.5
    image = fit_for_model(best.image)
    return image, best, build_views(k, image=image, best=best, frames=frames, start=START, end=END)


def distinct_images(views) -> int:
    return len({id(v.image) for v in views})


def test_a_static_scene_gets_no_other_moment_and_shares_the_best_frame():
    frames = ring()
    assert all(same_view(f.image, frames[25].image) for f in frames)  # only the small bar moves
    assert other_moments(frames, START, END, frames[25], 3) == []
    image, _, views = views_for(4, frames)
    assert [v.name for v in views] == ["best frame", "zoomed detail", "best frame; describe first",
                                       "best frame; list uncertainties"]
    assert [v.image is image for v in views] == [True, False, True, True]  # one encoding serves three drafts
    assert distinct_images(views) == 2
    assert views[1].instruction.startswith("This picture is a close-up")
    assert views[3].prompt("what is it?") == ("First say in one sentence what you cannot tell from the picture, "
                                              "then answer: what is it?")


def test_a_scene_that_changed_keeps_a_moment_of_the_other_view():
    frames = ring(turned_before=1.5)  # the head turned to the red square at 1.5 s, while the wearer asked
    image, best, views = views_for(4, frames)
    assert [v.name for v in views] == ["best frame", "zoomed detail", "best frame; describe first", "another moment"]
    moment = views[3]
    assert moment.frame_time < 1.5 and moment.instruction.startswith("This picture is from another moment")
    assert not same_view(frames[round(moment.frame_time * 10)].image, best.image)
    assert distinct_images(views) == 3
    # a fifth agent gets the last instruction on the best frame before anything else
    assert build_views(5, image=image, best=best, frames=frames, start=START, end=END)[4].name == \
        "best frame; list uncertainties"


def test_moments_differ_from_one_another_too():
    frames = ring(turned_before=1.5)
    moments = other_moments(frames, START, END, frames[25], 3)
    assert len(moments) == 1  # the earlier view, once: a second frame of it adds nothing
    assert moments[0].t < 1.5


def test_many_agents_get_distinct_views_and_the_crop_holds_the_detail():
    for frames in (ring(), ring(turned_before=1.5)):
        image, best, views = views_for(16, frames)
        assert len(views) == 16 and len({v.name for v in views}) == 16
        assert views[0].image is image
        moments = [v.frame_time for v in views if v.name.startswith("another moment")]
        assert all(abs(t - best.t) >= 0.3 for t in moments)
    (x0, y0, x1, y1), = detail_boxes(best.image, 1)
    assert x1 == 320 and y1 == 240  # the bottom-right window, where the checkerboard is


def test_without_a_camera_image_only_the_instructions_differ():
    blind = build_views(4, image=None, best=None, frames=[], start=START, end=END)
    assert [v.name for v in blind] == ["no image", "no image; describe first", "no image; list uncertainties",
                                       "no image"]
    assert all(v.image is None for v in blind)
