#!/usr/bin/python3
"""tests/ref/make_reference.py: the PyTorch oracle for tests/test_reference.c.

Builds kronformer's model from the README's description and the math (not from
model.c's code) for a few tiny configurations, computes in float64, and writes one
fixture per configuration, tests/ref/<name>.safetensors:

  param.<tensor>        the weights the test starts from (F32, exactly)
  src, tgt_in, tgt_out  the padded batch (F32 holding small integers; 0 is <pad>)
  logits                (B, T, V) at the starting weights
  loss, grad_norm       (3): the training loss (label-smoothed) and the global
                        gradient norm before clipping, at each of the 3 steps
  grad.<tensor>         d loss / d tensor at the starting weights
  adamw.<tensor>        the weights after 3 steps of clipping and AdamW

A float64 result X is stored as two F32 tensors, X (its float32 rounding) and X.lo
(the float32 rounding of the rest, X - float32(X)); X.hi + X.lo holds about 48 bits,
enough to compare a double build to 1e-10 (kronformer's safetensors reader is F32
only, and numpy users can ignore .lo). The metadata holds the config, as in a
checkpoint, the batch shape and the optimizer's settings.

The hyperparameters are float32 values (Config and model_adamw take floats): they are
rounded to float32 here too, so that both sides compute with the same numbers.

Developers only; building and testing need no Python. To regenerate:
    apt-get install -y python3-torch python3-numpy
    /usr/bin/python3 tests/ref/make_reference.py      # from the repository root
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as Fn

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))
PAD, BOS, EOS, FIRST = 0, 1, 2, 3   # ids 0..2 are special; real tokens are >= 3


def f32(x):
    return float(np.float32(x))


# Optimizer settings of `train fit` (run.c): betas 0.9/0.98, eps 1e-9, weight decay
# 0.01, clipping at 1.0; the learning rates of the 3 steps are set by hand, rising as
# in a warmup.
OPT = dict(beta1=f32(0.9), beta2=f32(0.98), eps=f32(1e-9), weight_decay=f32(0.01),
           clip=1.0, lr=[f32(2e-3), f32(4e-3), f32(6e-3)])
LABEL_SMOOTHING = f32(0.1)

# Small sizes, with the awkward cases: q = 3x3 = 9 > C = 8 (rows cut to C), t = 4x4 =
# 16 > V = 14 (table cut to V), an odd C (the last position channel is a sine), two
# layers where stacking matters.
CONFIGS = [
    dict(name="s2s_dense_tied", arch="seq2seq", V=14, C=8, NH=2, F=12, Le=2, Ld=2, tie=1, embed="dense"),
    dict(name="s2s_dense_untied", arch="seq2seq", V=14, C=8, NH=2, F=12, Le=1, Ld=1, tie=0, embed="dense"),
    dict(name="s2s_kron_tied", arch="seq2seq", V=14, C=8, NH=2, F=12, Le=1, Ld=1, tie=1,
         embed="kron:n=2,r=2,q=3x3"),
    dict(name="s2s_kronxs_untied", arch="seq2seq", V=14, C=8, NH=2, F=12, Le=1, Ld=1, tie=0,
         embed="kronxs:n=2,r=2,q=3x3,t=4x4"),
    dict(name="lm_dense_tied", arch="lm", V=14, C=9, NH=3, F=12, Le=0, Ld=2, tie=1, embed="dense"),
    dict(name="lm_kron_untied", arch="lm", V=14, C=8, NH=2, F=12, Le=0, Ld=2, tie=0,
         embed="kron:n=2,r=1,q=2x4"),
    dict(name="lm_kronxs_tied", arch="lm", V=14, C=8, NH=2, F=12, Le=0, Ld=1, tie=1,
         embed="kronxs:n=2,r=2,q=3x3,t=4x4"),
]
MAXT = 8


def parse_embed(spec):
    """'dense', 'kron:n=2,r=1,q=2x4', 'kronxs:n=..,r=..,q=..,t=..' (q, t given)."""
    if spec == "dense":
        return dict(kind="dense")
    kind, rest = spec.split(":")
    kv = dict(p.split("=") for p in rest.split(","))
    e = dict(kind=kind, n=int(kv["n"]), r=int(kv["r"]), q=[int(x) for x in kv["q"].split("x")])
    if kind == "kronxs":
        e["t"] = [int(x) for x in kv["t"].split("x")]
    return e


# ----------------------------------------------------------------------------
# Parameters: name -> (shape, kind). Weight decay applies to matrices and embeddings,
# not to LayerNorm gains and biases (README: AdamW).

def param_specs(cfg):
    V, C, F, Le, Ld = cfg["V"], cfg["C"], cfg["F"], cfg["Le"], cfg["Ld"]
    e = parse_embed(cfg["embed"])
    s = {}
    if e["kind"] == "dense":
        s["embed.weight"] = ((V, C), "embed")
    elif e["kind"] == "kron":   # row w, rank k: v_{w,k,1} | ... | v_{w,k,N}
        s["embed.kron"] = ((V, e["r"], sum(e["q"])), "embed")
    else:                        # F_{k,j}: (R, t_j, q_j)
        for j in range(e["n"]):
            s["embed.kronxs.%d" % j] = ((e["r"], e["t"][j], e["q"][j]), "embed")
    if not cfg["tie"]:
        s["output.weight"] = ((V, C), "matrix")

    def ln(pre, L):
        s[pre + ".weight"] = ((L, C) if L else (C,), "gain")
        s[pre + ".bias"] = ((L, C) if L else (C,), "bias")

    def linear(pre, L, out, inp):
        s[pre + ".weight"] = ((L, out, inp), "matrix")
        s[pre + ".bias"] = ((L, out), "bias")

    stacks = [("encoder", Le)] if cfg["arch"] == "seq2seq" else []
    stacks.append(("decoder", Ld))
    for pre, L in stacks:
        ln(pre + ".ln1", L)
        linear(pre + ".attn.qkv", L, 3 * C, C)
        linear(pre + ".attn.proj", L, C, C)
        if pre == "decoder" and cfg["arch"] == "seq2seq":
            ln("decoder.ln2", L)
            linear("decoder.cross.q", L, C, C)
            linear("decoder.cross.kv", L, 2 * C, C)
            linear("decoder.cross.proj", L, C, C)
        ln(pre + (".ln3" if pre == "decoder" else ".ln2"), L)
        linear(pre + ".ffn.fc1", L, F, C)
        linear(pre + ".ffn.fc2", L, C, F)
        ln(pre + ".ln_final", 0)
    return s


def init_params(cfg, rng):
    """Random float32 weights, larger than kronformer's init so that every path carries
    a visible gradient and the gradient norm exceeds the clipping threshold."""
    e = parse_embed(cfg["embed"])
    P = {}
    for name, (shape, kind) in param_specs(cfg).items():
        if kind == "gain":
            x = 1 + 0.2 * rng.standard_normal(shape)
        elif kind == "bias":
            x = 0.2 * rng.standard_normal(shape)
        elif kind == "embed":
            # a table entry is a sum of r products of n factors: std sqrt(r) s^n = 0.6
            s = 0.6 if e["kind"] == "dense" else (0.36 / e["r"]) ** (1 / (2 * e["n"]))
            x = s * rng.standard_normal(shape)
        else:
            x = 1.2 / math.sqrt(shape[-1]) * rng.standard_normal(shape)
        P[name] = np.asarray(x, dtype=np.float32)
    return P


# ----------------------------------------------------------------------------
# The model, from the README: pre-LN Transformer, GELU (tanh), sinusoidal positions,
# embedding * sqrt(C) + position, tied or separate output projection.

def layernorm(x, w, b):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)   # biased variance, eps 1e-5
    return (x - mean) / torch.sqrt(var + 1e-5) * w + b


def gelu(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def linear(x, w, b):
    return x @ w.T + b   # W is (out, in)


def positions(T, C):
    """pos[t, 2i] = sin(t / 10000^(2i/C)), pos[t, 2i+1] = cos(same); odd C ends on a sine."""
    pos = torch.zeros(T, C)
    for t in range(T):
        for i in range(0, C, 2):
            ang = t / 10000 ** (i / C)
            pos[t, i] = math.sin(ang)
            if i + 1 < C:
                pos[t, i + 1] = math.cos(ang)
    return pos


def embed_table(P, cfg):
    """The (V, C) table E: dense, word2ket or word2ketXS."""
    V, C = cfg["V"], cfg["C"]
    e = parse_embed(cfg["embed"])
    if e["kind"] == "dense":
        return P["embed.weight"]
    if e["kind"] == "kron":
        # row(w) = sum_k v_{w,k,1} (x) ... (x) v_{w,k,N}, cut to C
        K = P["embed.kron"]
        rows = 0
        for k in range(e["r"]):
            parts = torch.split(K[:, k, :], e["q"], dim=1)
            prod = parts[0]
            for p in parts[1:]:   # (a (x) b)[i * len(b) + j] = a_i b_j
                prod = (prod[:, :, None] * p[:, None, :]).reshape(V, -1)
            rows = rows + prod
        return rows[:, :C]
    # E = sum_k F_{k,1} (x) ... (x) F_{k,N} (Kronecker products of matrices), cut to V x C
    E = 0
    for k in range(e["r"]):
        M = P["embed.kronxs.0"][k]
        for j in range(1, e["n"]):
            M = torch.kron(M, P["embed.kronxs.%d" % j][k])
        E = E + M
    return E[:V, :C]


def tokens(P, cfg, tok):
    E = embed_table(P, cfg)
    T = tok.shape[1]
    return E[tok] * math.sqrt(cfg["C"]) + positions(T, cfg["C"])


def attention(q, k, v, key_valid, causal, NH):
    """softmax(q k^T / sqrt(hs)) v per head, padded keys (and, causal, later keys) masked."""
    B, Tq, C = q.shape
    Tk, hs = k.shape[1], C // NH
    qh = q.reshape(B, Tq, NH, hs).transpose(1, 2)
    kh = k.reshape(B, Tk, NH, hs).transpose(1, 2)
    vh = v.reshape(B, Tk, NH, hs).transpose(1, 2)
    s = qh @ kh.transpose(-1, -2) / math.sqrt(hs)
    mask = key_valid[:, None, None, :].expand(B, NH, Tq, Tk)
    if causal:
        mask = mask & torch.ones(Tq, Tk, dtype=torch.bool).tril()
    s = s.masked_fill(~mask, -math.inf)
    return (torch.softmax(s, -1) @ vh).transpose(1, 2).reshape(B, Tq, C)


def layer(P, pre, l):
    """The weights of layer l of a stack, by suffix: W('ln1.weight')."""
    return lambda suffix: P[pre + "." + suffix][l]


def self_attn(W, x, valid, causal, NH, C):
    qkv = linear(layernorm(x, W("ln1.weight"), W("ln1.bias")), W("attn.qkv.weight"), W("attn.qkv.bias"))
    y = attention(qkv[..., :C], qkv[..., C:2 * C], qkv[..., 2 * C:], valid, causal, NH)
    return x + linear(y, W("attn.proj.weight"), W("attn.proj.bias"))


def ffn(W, x, ln):
    h = gelu(linear(layernorm(x, W(ln + ".weight"), W(ln + ".bias")), W("ffn.fc1.weight"), W("ffn.fc1.bias")))
    return x + linear(h, W("ffn.fc2.weight"), W("ffn.fc2.bias"))


def forward(P, cfg, src, tgt_in):
    C, NH = cfg["C"], cfg["NH"]
    enc = None
    if cfg["arch"] == "seq2seq":
        sv = src != PAD
        x = tokens(P, cfg, src)
        for l in range(cfg["Le"]):
            W = layer(P, "encoder", l)
            x = self_attn(W, x, sv, False, NH, C)
            x = ffn(W, x, "ln2")
        enc = layernorm(x, P["encoder.ln_final.weight"], P["encoder.ln_final.bias"])
    x = tokens(P, cfg, tgt_in)
    for l in range(cfg["Ld"]):
        W = layer(P, "decoder", l)
        x = self_attn(W, x, tgt_in != PAD, True, NH, C)
        if enc is not None:
            h = layernorm(x, W("ln2.weight"), W("ln2.bias"))
            q = linear(h, W("cross.q.weight"), W("cross.q.bias"))
            kv = linear(enc, W("cross.kv.weight"), W("cross.kv.bias"))
            y = attention(q, kv[..., :C], kv[..., C:], src != PAD, False, NH)
            x = x + linear(y, W("cross.proj.weight"), W("cross.proj.bias"))
        x = ffn(W, x, "ln3")
    out = layernorm(x, P["decoder.ln_final.weight"], P["decoder.ln_final.bias"])
    Wout = embed_table(P, cfg) if cfg["tie"] else P["output.weight"]
    return out @ Wout.T


def loss_fn(logits, tgt_out, eps):
    """Mean over non-pad targets of -sum_v y_v log p_v, y = (1 - eps) onehot + eps / V."""
    V = logits.shape[-1]
    logp = torch.log_softmax(logits, -1)
    y = (1 - eps) * Fn.one_hot(tgt_out, V) + eps / V
    row = -(y * logp).sum(-1)
    valid = tgt_out != PAD
    loss = row[valid].mean()
    # the same quantity by PyTorch's own label-smoothed cross-entropy
    check = Fn.cross_entropy(logits.reshape(-1, V), tgt_out.reshape(-1), ignore_index=PAD,
                             label_smoothing=eps)
    assert abs(loss.item() - check.item()) < 1e-13 * abs(loss.item()), (loss.item(), check.item())
    return loss


# ----------------------------------------------------------------------------
# The batch, as data.c makes it: seq2seq src = x <eos>, tgt_in = <bos> y, tgt_out = y <eos>;
# lm tgt_in = <bos> x[:-1], tgt_out = x; every row padded with 0 at the end.

def make_batch(cfg, rng):
    V = cfg["V"]
    rand = lambda n: [int(t) for t in rng.integers(FIRST, V, n)]
    pad = lambda rows, L: torch.tensor([r + [PAD] * (L - len(r)) for r in rows])
    if cfg["arch"] == "seq2seq":
        xs, ys = [rand(n) for n in (4, 2, 5)], [rand(n) for n in (5, 2, 3)]
        src = [x + [EOS] for x in xs]
        tin, tout = [[BOS] + y for y in ys], [y + [EOS] for y in ys]
        S = max(map(len, src))
        src = pad(src, S)
    else:
        xs = [rand(n) for n in (6, 3, 5)]
        tin, tout = [[BOS] + x[:-1] for x in xs], xs
        src = None
    T = max(map(len, tin))
    return src, pad(tin, T), pad(tout, T)


# ----------------------------------------------------------------------------
# Training steps: global-norm clipping (g *= clip / norm when norm > clip; PyTorch's
# clip_grad_norm_ divides by norm + 1e-6 instead, so it is not used), then AdamW with
# bias correction and decoupled weight decay, written out and checked against
# torch.optim.AdamW.

def train_steps(P0, cfg, src, tin, tout, decay):
    P = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in P0.items()}
    m = {k: torch.zeros_like(p) for k, p in P.items()}
    v = {k: torch.zeros_like(p) for k, p in P.items()}
    # the second oracle: PyTorch's AdamW on a copy, fed the same clipped gradients
    Q = {k: torch.tensor(x, dtype=torch.float64, requires_grad=True) for k, x in P0.items()}
    groups = [dict(params=[Q[k] for k in Q if decay[k]], weight_decay=OPT["weight_decay"]),
              dict(params=[Q[k] for k in Q if not decay[k]], weight_decay=0.0)]
    opt = torch.optim.AdamW(groups, lr=OPT["lr"][0], betas=(OPT["beta1"], OPT["beta2"]), eps=OPT["eps"])
    b1, b2, eps = OPT["beta1"], OPT["beta2"], OPT["eps"]
    losses, norms, grads1 = [], [], None
    for t in (1, 2, 3):
        for p in P.values():
            p.grad = None
        loss = loss_fn(forward(P, cfg, src, tin), tout, LABEL_SMOOTHING)
        loss.backward()
        g = {k: p.grad.detach().clone() for k, p in P.items()}
        if t == 1:
            grads1 = {k: x.clone() for k, x in g.items()}
        norm = math.sqrt(sum(float((x * x).sum()) for x in g.values()))
        assert norm > OPT["clip"], "choose weights whose gradient norm exceeds the clip: %g" % norm
        losses.append(loss.item())
        norms.append(norm)
        scale = OPT["clip"] / norm
        lr = OPT["lr"][t - 1]
        with torch.no_grad():
            for k, p in P.items():
                gk = g[k] * scale
                m[k] = b1 * m[k] + (1 - b1) * gk
                v[k] = b2 * v[k] + (1 - b2) * gk * gk
                mhat, vhat = m[k] / (1 - b1 ** t), v[k] / (1 - b2 ** t)
                wd = OPT["weight_decay"] if decay[k] else 0.0
                p -= lr * (mhat / (torch.sqrt(vhat) + eps) + wd * p)
                Q[k].grad = gk.clone()
            for grp in opt.param_groups:
                grp["lr"] = lr
            opt.step()
    after = {k: p.detach() for k, p in P.items()}
    for k in after:   # the two AdamWs agree to rounding
        d = (after[k] - Q[k].detach()).abs().max().item()
        assert d < 1e-14 * max(1.0, after[k].abs().max().item()), (k, d)
    return losses, norms, grads1, after


# ----------------------------------------------------------------------------
# safetensors writer: uint64 header length, JSON header (padded with spaces to a
# multiple of 8), little-endian F32 data.

def write_safetensors(path, tensors, meta):
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, arr in tensors:
        a = np.ascontiguousarray(arr, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def hi_lo(name, x):
    """X as float32 X and the float32 rounding of its remainder, X.lo."""
    x = np.asarray(x, dtype=np.float64)
    hi = x.astype(np.float32)
    lo = (x - hi.astype(np.float64)).astype(np.float32)
    return [(name, hi), (name + ".lo", lo)]


def make_fixture(cfg, seed):
    rng = np.random.default_rng(seed)
    specs = param_specs(cfg)
    decay = {k: kind in ("embed", "matrix") for k, (shape, kind) in specs.items()}
    P0 = init_params(cfg, rng)
    src, tin, tout = make_batch(cfg, rng)
    Pd = {k: torch.tensor(x, dtype=torch.float64) for k, x in P0.items()}
    with torch.no_grad():
        logits = forward(Pd, cfg, src, tin)
    assert torch.isfinite(logits).all()
    losses, norms, grads, after = train_steps(P0, cfg, src, tin, tout, decay)

    tensors = [("param." + k, P0[k]) for k in specs]
    if src is not None:
        tensors.append(("src", src.numpy()))
    tensors += [("tgt_in", tin.numpy()), ("tgt_out", tout.numpy())]
    tensors += hi_lo("logits", logits.numpy()) + hi_lo("loss", losses) + hi_lo("grad_norm", norms)
    for k in specs:
        tensors += hi_lo("grad." + k, grads[k].numpy())
    for k in specs:
        tensors += hi_lo("adamw." + k, after[k].numpy())
    B, T = tin.shape
    meta = {"format": "kronformer-reference", "version": "1",
            "arch": cfg["arch"], "V": str(cfg["V"]), "C": str(cfg["C"]), "NH": str(cfg["NH"]),
            "F": str(cfg["F"]), "Le": str(cfg["Le"]), "Ld": str(cfg["Ld"]), "maxT": str(MAXT),
            "tie": str(cfg["tie"]), "embed": cfg["embed"], "dropout": "0",
            "label_smoothing": repr(np.float32(LABEL_SMOOTHING)),
            "num_params": str(sum(int(np.prod(s)) for s, _ in specs.values())),
            "B": str(B), "S": str(src.shape[1] if src is not None else 0), "T": str(T),
            "steps": "3", "lr": ",".join(repr(np.float32(x)) for x in OPT["lr"]),
            "beta1": repr(np.float32(OPT["beta1"])), "beta2": repr(np.float32(OPT["beta2"])),
            "eps": repr(np.float32(OPT["eps"])),
            "weight_decay": repr(np.float32(OPT["weight_decay"])), "clip": repr(OPT["clip"])}
    path = os.path.join(HERE, cfg["name"] + ".safetensors")
    write_safetensors(path, tensors, meta)
    print("%-20s %7d bytes  loss %.6f  grad norms %s" % (
        cfg["name"] + ":", os.path.getsize(path), losses[0], ", ".join("%.3f" % n for n in norms)))


if __name__ == "__main__":
    for i, cfg in enumerate(CONFIGS):
        make_fixture(cfg, 1000 + i)
