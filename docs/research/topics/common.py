import json, numpy as np, pandas as pd
from sklearn.metrics import adjusted_rand_score as ari, v_measure_score as vm, adjusted_mutual_info_score as ami
C = "/work/scratch/topics/cache/"
def load(name):
    X = np.load(C+name+".npy"); meta = json.load(open(C+name+".json"))
    y = np.array(meta["labels"]) if meta["labels"] else None
    return X, y, meta["texts"]
def purity(y, l):
    m = l >= 0
    if not m.any(): return float("nan")
    t = pd.crosstab(l[m], y[m]); return t.max(axis=1).sum() / m.sum()
def scores(y, l):
    k = len(set(l[l>=0])); nz = float(np.mean(l<0))
    return dict(k=k, ari=ari(y,l), ami=ami(y,l), v=vm(y,l), pur=purity(y,l), noise=nz)
def fmt(name, d, s):
    return f"{name:44s} k={d['k']:4d} ARI={d['ari']:.3f} AMI={d['ami']:.3f} V={d['v']:.3f} pur={d['pur']:.3f} noise={d['noise']:.1%} {s:.1f}s"
