"""Tiny random-weight vision-language models: a LLaVA chat model and a BLIP captioner.

Both use a byte-level BPE tokenizer with no merges (any text tokenizes, nothing downloads) and
are written with ``save_pretrained`` so ``AutoModelForImageTextToText`` / ``AutoProcessor`` load
them back through the real code path (ECOSYSTEM.md section 4.4).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from t2iaudit.tiny.clip import TINY_IMAGE_SIZE, TINY_VISION

LLAVA_SPECIALS = ["<pad>", "<s>", "</s>", "<image>", "<|user|>", "<|assistant|>", "<|end|>"]
"""Special tokens of the tiny LLaVA tokenizer (ids 0..6)."""

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|>' }}{% if m['content'] is string %}"
    "{{ m['content'] }}{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|end|>"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
"""A minimal chat template: role markers, the image placeholder, the text parts."""

BLIP_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
"""Special tokens of the tiny BLIP tokenizer; ``[DEC]`` starts every caption as in BLIP."""

CAPTION_WORDS = (
    "a an the of in on with and at two group photo portrait person people man woman child "
    "doctor nurse teacher chef worker dog cat car bicycle street room office kitchen table chair "
    "tree building sky water food book computer hat shirt coat smiling standing sitting holding "
    "wearing white black red blue green young old background"
).split()
"""The tiny captioner's word vocabulary: random weights still give captions of real words, so
caption-based metrics (TBYB hallucination) have content words to work on in smoke runs."""


def byte_level_tokenizer(specials: list[str], **kwargs: Any) -> Any:
    """A ``PreTrainedTokenizerFast`` over ``specials`` plus the 256 byte characters."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from t2iaudit.tiny.tokenizers import byte_vocab

    backend = Tokenizer(models.BPE(vocab=byte_vocab(specials), merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs)


def word_level_tokenizer(specials: list[str], words: list[str], **kwargs: Any) -> Any:
    """A BERT-like ``PreTrainedTokenizerFast`` over whole words (others become ``[UNK]``)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate([*specials, *words])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    # BERT-style "[CLS] text [SEP]", as BLIP's tokenizer: BLIP's generate swaps the first
    # token for [DEC] and drops the last one, so a caption prefix survives intact.
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    return PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs)


def _clip_image_processor() -> Any:
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    return CLIPImageProcessorPil(
        size={"shortest_edge": TINY_IMAGE_SIZE},
        crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE},
    )


def save_tiny_llava(folder: Path, seed: int = 0) -> None:
    """Write a ~100 k-parameter ``LlavaForConditionalGeneration`` and its processor to ``folder``."""
    import torch
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    torch.manual_seed(seed)
    tok = byte_level_tokenizer(
        LLAVA_SPECIALS,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        extra_special_tokens={"image_token": "<image>"},
        chat_template=CHAT_TEMPLATE,
    )
    config = LlavaConfig(
        vision_config=dict(
            model_type="clip_vision_model",
            image_size=TINY_IMAGE_SIZE,
            patch_size=8,
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            projection_dim=32,
        ),
        text_config=dict(
            model_type="llama",
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            pad_token_id=tok.pad_token_id,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
        ),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
    )
    LlavaForConditionalGeneration(config).save_pretrained(folder, safe_serialization=True)
    LlavaProcessor(
        image_processor=_clip_image_processor(),
        tokenizer=tok,
        patch_size=8,
        vision_feature_select_strategy="default",
        # CLIP's CLS token: without it "Image features and image tokens do not match".
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    ).save_pretrained(folder)


def save_tiny_blip(folder: Path, seed: int = 0) -> None:
    """Write a tiny ``BlipForConditionalGeneration`` captioner and its processor to ``folder``."""
    import torch
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipProcessor
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    torch.manual_seed(seed)
    tok = word_level_tokenizer(
        BLIP_SPECIALS,
        CAPTION_WORDS,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        bos_token="[DEC]",
    )
    config = BlipConfig(
        projection_dim=16,
        text_config=dict(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            encoder_hidden_size=32,
            max_position_embeddings=64,
            pad_token_id=tok.pad_token_id,
            bos_token_id=tok.convert_tokens_to_ids("[DEC]"),
            eos_token_id=tok.sep_token_id,
            sep_token_id=tok.sep_token_id,
        ),
        vision_config=dict(TINY_VISION),
    )
    BlipForConditionalGeneration(config).save_pretrained(folder, safe_serialization=True)
    image_processor = BlipImageProcessorPil(size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE})
    BlipProcessor(image_processor=image_processor, tokenizer=tok).save_pretrained(folder)


QWEN_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
"""Special tokens of the tiny Qwen2.5-VL tokenizer, spelled as Qwen's."""

QWEN_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""Qwen's ChatML layout (without its default system turn)."""


def save_tiny_qwen2_5_vl(folder: Path, seed: int = 0) -> None:
    """Write a tiny ``Qwen2_5_VLForConditionalGeneration`` and processor to ``folder``.

    Exercises what LLaVA does not: multimodal rotary positions (mrope), a variable number of
    image tokens per image (``image_grid_thw``) and a processor with a video side (which needs
    torchvision). Config follows transformers' own Qwen2-VL tests.
    """
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    torch.manual_seed(seed)
    tok = byte_level_tokenizer(
        QWEN_SPECIALS,
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        chat_template=QWEN_TEMPLATE,
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"},
    )
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIALS}
    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            rope_scaling={"type": "mrope", "mrope_section": [2, 1, 1]},
            pad_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            bos_token_id=ids["<|im_start|>"],
        ),
        vision_config=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=37,
            num_heads=4,
            out_hidden_size=32,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=28,
            fullatt_block_indexes=[1],
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(folder, safe_serialization=True)
    Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessorPil(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 16),
        tokenizer=tok,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=QWEN_TEMPLATE,
    ).save_pretrained(folder)
