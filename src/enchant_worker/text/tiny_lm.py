"""A tiny randomly initialised causal language model with its tokenizer, built locally (nothing is
downloaded): for tests and the embedded default of the `llm` analyzer, as `generation.tiny_model` is for
Stable Diffusion. Its text is noise; constrained decoding still makes it return valid JSON.

The tokenizer is a byte-level BPE trained here on a few lines of English and JSON (so any text encodes),
with a chat template; the model is a 2-layer Llama-shaped network.
"""

from __future__ import annotations

from pathlib import Path

from enchant_worker.text.models import TINY_TEXT_NAME  # noqa: F401  (the name it is known by)

VOCAB_SIZE = 400
HIDDEN = 48
LAYERS = 2
HEADS = 2
CONTEXT_TOKENS = 8192  # rotary positions: a long context costs no weights
SEED = 0
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
_CORPUS = [
    '{"summary": "she walked to the lighthouse", "emotional_tone": "tense", "characters": []}',
    "The wind rose over the harbour and the lamp flickered. She was afraid, and he laughed.",
    "joy sadness anger fear surprise disgust love calm relief determination hope guilt low medium high",
    'neutral joyful somber ominous startling grim romantic peaceful hopeful resolute "name" "emotion"',
    '0123456789 {}[]:," true false null',
]


def build_tiny_text_model(path: Path | str) -> Path:
    """Writes the tokenizer and the model to `path` (a transformers folder) and returns it."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    # 1. Tokenizer: byte-level BPE (every byte is a token, so nothing is out of vocabulary)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        _CORPUS * 4,
        vocab_size=VOCAB_SIZE,
        min_frequency=1,
        special_tokens=["<s>", "</s>", "<pad>"],
        show_progress=False,
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        model_max_length=CONTEXT_TOKENS,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(path)
    # 2. Model: random weights, fixed seed
    torch.manual_seed(SEED)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=HEADS,
        max_position_embeddings=CONTEXT_TOKENS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(path, safe_serialization=True)
    return path
