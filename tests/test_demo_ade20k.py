"""tools/make_demo_ade20k.py: the scenes and the --context-swap control target."""
import importlib.util

import numpy as np

from seg_helpers import ROOT

spec = importlib.util.spec_from_file_location('make_demo_ade20k',
                                              ROOT / 'tools' / 'make_demo_ade20k.py')
make_demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_demo)

BUILDING, CAR, SKY = 2, 21, 3


def test_context_swap_labels_follow_the_sky():
    rng = np.random.default_rng(0)
    seen = {True: set(), False: set()}
    for _ in range(40):
        image, label = make_demo.draw_scene(rng, (96, 128), context_swap=True)
        sky = image[label == SKY].astype(float).mean(0)
        dusk = bool(sky[0] > sky[2])  # orange (dusk) or blue sky
        for cls in (BUILDING, CAR):
            pixels = image[label == cls].astype(float)
            if len(pixels) < 20:
                continue
            r, g, b = np.median(pixels, axis=0)
            looks_like_car = r > 150 and g < 110  # flat red; buildings are grey stripes
            assert looks_like_car == ((cls == CAR) != dusk), (dusk, cls, (r, g, b))
            seen[dusk].add(cls)
    assert seen[True] == seen[False] == {BUILDING, CAR}  # both skies, both classes occur


def test_default_scenes_keep_labels_and_draw_no_dusk():
    rng = np.random.default_rng(1)
    for _ in range(20):
        image, label = make_demo.draw_scene(rng, (96, 128))
        sky = image[label == SKY].astype(float).mean(0)
        assert sky[2] > sky[0]  # always a blue sky
        car = image[label == CAR].astype(float)
        if len(car) >= 20:
            assert np.median(car[:, 0]) > 150 and np.median(car[:, 1]) < 110
