"""Tiny random-weight CLIP models for both judge backends (transformers and open_clip).

Configs follow ECOSYSTEM.md section 3: 32x32 images, 8x8 patches, 2 layers, 16-dim embeddings.
Both are written in the on-disk layout their real loaders read, so tests run the real code.
"""

from __future__ import annotations

import json
from pathlib import Path

TINY_IMAGE_SIZE = 32
"""Image side of the tiny CLIPs; processors resize any input down to this."""
TINY_VISION = dict(
    image_size=TINY_IMAGE_SIZE,
    patch_size=8,
    hidden_size=32,
    intermediate_size=37,
    num_hidden_layers=2,
    num_attention_heads=4,
)
"""The tiny ViT shared by the CLIPs, LLaVA's vision tower and BLIP."""


def save_tiny_hf_clip(folder: Path, seed: int = 0) -> None:
    """Write a transformers ``CLIPModel`` + ``CLIPProcessor`` (PIL backend) to ``folder``."""
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    from t2iaudit.tiny.tokenizers import tiny_clip_tokenizer

    torch.manual_seed(seed)
    tok = tiny_clip_tokenizer()
    config = CLIPConfig(
        projection_dim=16,
        text_config=dict(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        ),
        vision_config=dict(TINY_VISION),
    )
    CLIPModel(config).save_pretrained(folder, safe_serialization=True)
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": TINY_IMAGE_SIZE},
        crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE},
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=tok).save_pretrained(folder)


OPEN_CLIP_TINY_CONFIG = {
    "model_cfg": {
        "embed_dim": 16,
        "vision_cfg": {
            "image_size": TINY_IMAGE_SIZE,
            "layers": 2,
            "width": 32,
            "head_width": 16,
            "patch_size": 8,
        },
        # vocab_size must stay 49408: the default tokenizer (shipped in the wheel) is used.
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
    },
    "preprocess_cfg": {
        "mean": [0.48145466, 0.4578275, 0.40821073],
        "std": [0.26862954, 0.26130258, 0.27577711],
        "interpolation": "bicubic",
        "resize_mode": "shortest",
    },
}


def save_tiny_open_clip(folder: Path, seed: int = 0) -> None:
    """Write an open_clip ``local-dir:`` folder: ``open_clip_config.json`` + safetensors weights."""
    import logging

    import open_clip
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps(OPEN_CLIP_TINY_CONFIG, indent=2))
    torch.manual_seed(seed)
    # open_clip warns that the folder has no weights yet: expected, they are written just below.
    previous = logging.root.level
    logging.root.setLevel(logging.ERROR)
    try:
        model = open_clip.create_model(f"local-dir:{folder}", pretrained_text=False)
    finally:
        logging.root.setLevel(previous)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))
