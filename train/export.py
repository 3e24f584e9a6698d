"""Export a checkpoint of model.py for tools/gguf-pack, which writes the GGUF.

copse writes its GGUF files with its own writer (runtime/gguf_write.c), so this
script only lays out what goes in them, in a small "CPAK" file that
gguf-pack reads (all integers little-endian):

    "CPAK"  u32 version (1)  u32 n_kv  u32 n_tensors
    n_kv times:      str key, u32 gguf type, value
                     (UINT32/INT32/FLOAT32: 4 bytes; BOOL: 1 byte; STRING: str;
                      ARRAY: u32 element type, u32 n, the elements as above)
    n_tensors times: str name, u32 ggml type, u32 n_dims, u64 ne[n_dims],
                     u64 n_bytes, the data (already converted to the type)
    str = u32 length + bytes

Names and keys are llama.cpp's: token_embd.weight, blk.N.attn_q.weight, ...,
llama.context_length, tokenizer.ggml.*. The output projection is tied, so the
file has no output.weight. Norm weights stay F32; matrices are F32, F16 or
Q8_0 (blocks of 32: f16 scale = max|x|/127, then 32 int8 = round(x/scale)).

    python3 export.py ckpt/policy/ckpt.pt -o policy.cpak --type f16
    build/bin/gguf-pack policy.cpak ../models/policy.gguf
"""

import argparse
import json
import struct

import torch

import bpe
from sample import load_model

# gguf value types and ggml tensor types (numbering of the GGUF format)
U32, I32, F32V, BOOL, STR, ARR = 4, 5, 6, 7, 8, 9
GGML = {"f32": 0, "f16": 1, "q8_0": 8}
FILE_TYPE = {"f32": 0, "f16": 1, "q8_0": 7}   # general.file_type: all F32, mostly F16, mostly Q8_0

PROMPT_TEMPLATE = "Question: {question}\nAnswer:\n"


def pack_str(s):
    b = s.encode("utf-8")
    return struct.pack("<I", len(b)) + b


def pack_value(kind, v):
    if kind == STR:
        return pack_str(v)
    if kind == BOOL:
        return struct.pack("<B", 1 if v else 0)
    return struct.pack({U32: "<I", I32: "<i", F32V: "<f"}[kind], v)


def pack_kv(key, kind, v, elem=None):
    out = pack_str(key) + struct.pack("<I", kind)
    if kind == ARR:
        out += struct.pack("<II", elem, len(v)) + b"".join(pack_value(elem, x) for x in v)
    else:
        out += pack_value(kind, v)
    return out


def q8_0(w):
    """Q8_0 blocks of a float tensor whose rows are a multiple of 32 long."""
    blocks = w.reshape(-1, 32).to(torch.float32)
    d = blocks.abs().amax(1) / 127.0
    inv = torch.where(d > 0, 1.0 / d, torch.zeros_like(d))
    q = torch.round(blocks * inv[:, None]).clamp(-127, 127).to(torch.int8)
    scale = d.to(torch.float16).view(torch.uint8).reshape(-1, 2)   # little-endian host
    return torch.cat((scale, q.view(torch.uint8)), 1).numpy().tobytes()


def tensor_bytes(w, kind):
    if kind == "f32":
        return w.to(torch.float32).numpy().tobytes()
    if kind == "f16":
        return w.to(torch.float16).numpy().tobytes()
    return q8_0(w)


def pack_tensor(name, w, kind):
    """w is (rows, cols) in PyTorch order: ggml's ne is reversed, ne[0] = cols."""
    if w.dim() == 1 or w.shape[-1] % 32:
        kind = "f32" if w.dim() == 1 else kind
        if kind == "q8_0":
            raise ValueError(f"{name}: rows of {w.shape[-1]} are not a multiple of 32 for Q8_0")
    data = tensor_bytes(w.detach().contiguous(), kind)
    ne = list(reversed(w.shape))
    return (pack_str(name) + struct.pack("<II", GGML[kind], len(ne)) +
            struct.pack(f"<{len(ne)}Q", *ne) + struct.pack("<Q", len(data)) + data)


def metadata(cfg, tok_meta, name, kind):
    a = "llama"
    kv = [("general.architecture", STR, a), ("general.name", STR, name),
          ("general.file_type", U32, FILE_TYPE[kind]),
          (f"{a}.vocab_size", U32, cfg.vocab_size),
          (f"{a}.context_length", U32, cfg.max_seq),
          (f"{a}.embedding_length", U32, cfg.dim),
          (f"{a}.block_count", U32, cfg.n_layers),
          (f"{a}.feed_forward_length", U32, cfg.ffn_dim),
          (f"{a}.attention.head_count", U32, cfg.n_heads),
          (f"{a}.attention.head_count_kv", U32, cfg.n_kv_heads),
          (f"{a}.rope.dimension_count", U32, cfg.head_dim),
          (f"{a}.rope.freq_base", F32V, cfg.rope_base),
          (f"{a}.attention.layer_norm_rms_epsilon", F32V, cfg.norm_eps),
          ("tokenizer.ggml.model", STR, tok_meta["model"]),
          ("tokenizer.ggml.pre", STR, tok_meta["pre"]),
          ("tokenizer.ggml.bos_token_id", U32, tok_meta["bos_token_id"]),
          ("tokenizer.ggml.eos_token_id", U32, tok_meta["eos_token_id"]),
          ("tokenizer.ggml.padding_token_id", U32, tok_meta["padding_token_id"]),
          ("tokenizer.ggml.add_bos_token", BOOL, tok_meta["add_bos_token"]),
          ("tokenizer.ggml.add_eos_token", BOOL, tok_meta["add_eos_token"]),
          # how the tutor was trained to be prompted, and where its steps end
          ("copse.prompt_template", STR, PROMPT_TEMPLATE),
          ("copse.step_separator", STR, "\n")]
    packed = [pack_kv(k, t, v) for k, t, v in kv]
    packed.append(pack_kv("tokenizer.ggml.tokens", ARR, tok_meta["tokens"], STR))
    packed.append(pack_kv("tokenizer.ggml.token_type", ARR, tok_meta["token_type"], I32))
    packed.append(pack_kv("tokenizer.ggml.merges", ARR, tok_meta["merges"], STR))
    return packed


def tensors(model, kind):
    sd = model.state_dict()
    out = [pack_tensor("token_embd.weight", sd["tok_emb.weight"], kind),
           pack_tensor("output_norm.weight", sd["norm.weight"], kind)]
    names = {"attn_norm.weight": "attn_norm.weight", "attn.wq.weight": "attn_q.weight",
             "attn.wk.weight": "attn_k.weight", "attn.wv.weight": "attn_v.weight",
             "attn.wo.weight": "attn_output.weight", "ffn_norm.weight": "ffn_norm.weight",
             "w_gate.weight": "ffn_gate.weight", "w_up.weight": "ffn_up.weight",
             "w_down.weight": "ffn_down.weight"}
    for i in range(model.cfg.n_layers):
        for ours, theirs in names.items():
            out.append(pack_tensor(f"blk.{i}.{theirs}", sd[f"layers.{i}.{ours}"], kind))
    if "cls.weight" in sd:      # a PRM's value head (issue 5), kept in F32
        out += [pack_tensor("cls.weight", sd["cls.weight"], "f32"),
                pack_tensor("cls.bias", sd["cls.bias"], "f32")]
    if len(out) != len(sd):
        raise ValueError(f"exported {len(out)} of {len(sd)} tensors")
    return out


def export(ckpt, tok_path, out, kind, name):
    model, _ = load_model(ckpt)
    with open(tok_path) as f:
        tok_meta = json.load(f)
    if len(tok_meta["tokens"]) != model.cfg.vocab_size:
        raise ValueError("tokenizer and model disagree on the vocabulary size")
    kv, ts = metadata(model.cfg, tok_meta, name, kind), tensors(model, kind)
    with open(out, "wb") as f:
        f.write(b"CPAK" + struct.pack("<III", 1, len(kv), len(ts)))
        for part in kv + ts:
            f.write(part)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ckpt")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--tokenizer", default="tokenizer.json")
    ap.add_argument("--type", default="f16", choices=GGML)
    ap.add_argument("--name", default="copse-math-tutor")
    args = ap.parse_args()
    export(args.ckpt, args.tokenizer, args.out, args.type, args.name)


if __name__ == "__main__":
    main()
