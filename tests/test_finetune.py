"Fast tests of tltutor.finetune: cached feature extraction, model splitting, gradual unfreezing, layer transplants, simple features."
import pytest
import torch
import torch.nn as nn

from tltutor.core import set_seed
from tltutor.data import tensor_loader
from tltutor.models import count_params, layer_groups, mobilenet_v2
from tltutor.finetune import (copy_layers, extract_features, fit_head, fuse_features, gradual_unfreeze,
                              simple_features, split_model, to_device)
from tltutor.models import small_cnn


@pytest.fixture(scope='module')
def mnet():
    set_seed(0)
    return mobilenet_v2(num_classes=10, input_size=32).eval()


def digits_like(n=40, size=16, seed=0):
    "Images whose class is where a bright square sits: a task a small CNN learns in a few epochs."
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    x = 0.1*torch.rand(n, 1, size, size, generator=g)
    for i, c in enumerate(y.tolist()):
        r, col = divmod(c, 2)
        x[i, 0, r*size//2:(r+1)*size//2, col*size//2:(col+1)*size//2] += 0.9
    return x, y


def test_split_model_pieces_compose_and_share(mnet):
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        full = mnet(x)
        a, b, c = split_model(mnet, 5, -1)
        torch.testing.assert_close(c(b(a(x))), full)
        bb, hh = split_model(mnet, -1)
        assert bb(x).shape == (3, 1280)
    assert hh[0] is mnet.net.classifier
    assert any(m is mnet.net.features[5] for m in b.modules())


def test_split_model_small_cnn():
    net = small_cnn(4)
    bottom, top = split_model(net, 2)
    assert len([m for m in bottom if any(True for _ in m.parameters())]) == 2
    x = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(top(bottom(x)), net(x))


@pytest.mark.parametrize('cuts, msg', [((), 'at least one cut'), ((0,), 'layer groups'), ((20,), 'layer groups'),
                                       ((True,), 'layer groups'), ((1.5,), 'layer groups'), ((7, 3), 'increase'),
                                       ((5, 5), 'increase')])
def test_split_model_bad_cuts(mnet, cuts, msg):
    with pytest.raises(ValueError, match=msg): split_model(mnet, *cuts)


def test_split_model_rejects_other_modules():
    class Net(nn.Module):
        def __init__(self): super().__init__(); self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 2)
        def forward(self, x): return self.b(self.a(x))
    with pytest.raises(TypeError, match='nn.Sequential'): split_model(Net(), 1)


def test_extract_features_matches_backbone_and_restores_mode(mnet):
    x, y = torch.rand(10, 1, 28, 28), torch.arange(10)
    mnet.train()
    feats, labels = extract_features(mnet, tensor_loader(x, y, bs=4))
    assert mnet.training and all(m.training for m in mnet.modules())   # modes restored
    mnet.eval()
    with torch.no_grad(): torch.testing.assert_close(feats, split_model(mnet, -1)[0](x))
    assert feats.shape == (10, 1280) and torch.equal(labels, y)
    acts, _ = extract_features(mnet, tensor_loader(x, y, bs=4), k=7)
    assert acts.shape[:2] == (10, 32)          # block 6's output: 32 channels
    again, _ = extract_features(split_model(mnet, 7)[1][:-1], tensor_loader(acts, y, bs=4), k=None)
    torch.testing.assert_close(again, feats, atol=1e-4, rtol=1e-4)


def test_extract_features_bad_inputs(mnet):
    with pytest.raises(ValueError, match='empty'): extract_features(mnet, [])
    with pytest.raises(TypeError, match=r'\(x, y\)'): extract_features(mnet, [torch.rand(2, 1, 28, 28)])
    with pytest.raises(ValueError, match='layer groups'): extract_features(mnet, [], k=40)


def test_fit_head_learns_and_trains_the_given_head():
    set_seed(0)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 3
    f = torch.randn(200, 8, generator=g) + 4*nn.functional.one_hot(y, 8).float()
    head, h = fit_head(f[:150], y[:150], valid=(f[150:], y[150:]), lr=0.05, epochs=5)
    assert isinstance(head, nn.Linear) and head.out_features == 3 and h.best['valid_accuracy'] > 0.9
    mine = nn.Sequential(nn.Linear(8, 3))
    w0 = mine[0].weight.detach().clone()
    out, _ = fit_head(f, y, head=mine, epochs=1)
    assert out is mine and not torch.equal(w0, mine[0].weight)


def test_fit_head_bad_inputs():
    with pytest.raises(ValueError, match='cached features'): fit_head(torch.rand(5), torch.zeros(5).long())
    with pytest.raises(ValueError, match='cached features'): fit_head([[1.0]], torch.zeros(1).long())
    with pytest.raises(ValueError, match='flat features'): fit_head(torch.rand(4, 3, 2, 2), torch.zeros(4).long())
    with pytest.raises(ValueError, match='must match'): fit_head(torch.rand(4, 3), torch.zeros(5).long())


def test_gradual_unfreezing_unfreezes_from_the_top():
    set_seed(0)
    x, y = digits_like()
    net = small_cnn(4)
    w_bottom = net[0][0].weight.detach().clone()
    dl = tensor_loader(x, y, bs=10, shuffle=True)
    h = gradual_unfreeze(net, dl, tensor_loader(x, y, bs=40), epochs=3, lr=1e-2)   # one schedule: 3e-3 is too slow here
    groups = layer_groups(net)
    assert h['trainable'][0] == count_params(groups[-1])                        # epoch 1: the head only
    assert h['trainable'] == sorted(h['trainable']) and h['trainable'][-1] == count_params(net, trainable=False)
    assert [r['epoch'] for r in h.records] == [1, 2, 3] and h.best_epoch == 2   # it learns: the last epoch is best
    assert all(p.requires_grad for p in net.parameters())
    assert not torch.equal(w_bottom, net[0][0].weight)                         # the bottom trained in the last epoch


def test_gradual_unfreezing_runs_one_schedule_over_all_epochs(monkeypatch):
    "One warm-up and one cosine decay over the whole run, as full fine-tuning gets: no restart at every epoch."
    import tltutor.finetune as ft
    real, seen = ft.fit, []
    def spy(model, dl, *a, opt=None, sched=None, **kw):
        seen.append(sched); h = real(model, dl, *a, opt=opt, sched=sched, **kw)
        seen.append(opt.param_groups[0]['lr']); return h
    monkeypatch.setattr(ft, 'fit', spy)
    set_seed(0)
    x, y = digits_like()
    gradual_unfreeze(small_cnn(4), tensor_loader(x, y, bs=10), epochs=3, lr=3e-3)   # 4 steps an epoch
    scheds, rates = seen[0::2], seen[1::2]
    assert all(s is scheds[0] for s in scheds) and scheds[0].last_epoch == 12   # one schedule, stepped 12 times
    assert rates[0] > rates[1] > rates[2] == 0                                  # decays across epochs, to 0 at the end
    seen.clear()
    gradual_unfreeze(small_cnn(4), tensor_loader(x, y, bs=10), epochs=2, lr=3e-3, sched=None)
    assert seen[0::2] == [None, None] and seen[1::2] == [3e-3, 3e-3]             # sched=None: a constant rate


def test_gradual_unfreezing_step_one_never_reaches_the_bottom():
    set_seed(0)
    x, y = digits_like()
    net = small_cnn(4)
    w_bottom = net[0][0].weight.detach().clone()
    gradual_unfreeze(net, tensor_loader(x, y, bs=10), epochs=2, lr=3e-3, step=1, restore_best=False)
    assert torch.equal(w_bottom, net[0][0].weight)


def test_gradual_unfreezing_discriminative_and_deterministic():
    x, y = digits_like()
    out = []
    for _ in range(2):
        set_seed(1); net = small_cnn(4)
        gradual_unfreeze(net, tensor_loader(x, y, bs=10, shuffle=True), epochs=2, lr=3e-3, lowest_lr=3e-4)
        out.append(net[-1].weight.detach().clone())
    assert torch.equal(*out)


@pytest.mark.parametrize('kw, msg', [({'epochs': 0}, 'at least 1 epoch'), ({'epochs': 2.5}, 'at least 1 epoch'),
                                     ({'step': 0}, 'at least 1 layer group'), ({'lowest_lr': 1.0}, 'lowest_lr')])
def test_gradual_unfreezing_bad_inputs(kw, msg):
    x, y = digits_like(8)
    with pytest.raises(ValueError, match=msg): gradual_unfreeze(small_cnn(4), tensor_loader(x, y), **kw)


def test_small_cnn_shapes_and_errors():
    net = small_cnn(7, in_channels=3, size=32, widths=(8, 8), hidden=16)
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 7) and len(layer_groups(net)) == 4
    with pytest.raises(ValueError, match='multiple of'): small_cnn(size=20)
    with pytest.raises(ValueError, match='multiple of'): small_cnn(size=4)
    with pytest.raises(ValueError, match='multiple of'): small_cnn(widths=())
    with pytest.raises(ValueError, match='num_classes'): small_cnn(1)


def test_copy_layers():
    a, b = small_cnn(5), small_cnn(5)
    assert copy_layers(a, b, 3) is b
    for i in range(3): assert all(torch.equal(p, q) for p, q in zip(layer_groups(a)[i].parameters(), layer_groups(b)[i].parameters()))
    assert not torch.equal(a[3][1].weight, b[3][1].weight)
    copy_layers(a, small_cnn(10), 4)                   # a different head is fine below it
    with pytest.raises(ValueError, match='layer group 4 differs'): copy_layers(a, small_cnn(10), 5)
    with pytest.raises(ValueError, match='between 0 and 5'): copy_layers(a, b, -1)
    with pytest.raises(ValueError, match='between 0 and 5'): copy_layers(a, b, True)


def test_simple_features():
    x = torch.rand(3, 3, 28, 28)
    assert simple_features(x, 'pixels', size=4).shape == (3, 16)
    h = simple_features(x, 'hog')
    assert h.shape == (3, 324) and h.dtype == torch.float32
    torch.testing.assert_close(simple_features(x.mean(1, keepdim=True), 'hog'), h)
    with pytest.raises(ValueError, match="'pixels' or 'hog'"): simple_features(x, 'sift')
    with pytest.raises(ValueError, match=r'\[N, C, H, W\]'): simple_features(x[0], 'hog')
    with pytest.raises(ValueError, match='too small'): simple_features(torch.rand(2, 1, 10, 10), 'hog')


def test_fuse_features():
    a, b = 10*torch.rand(5, 4), torch.rand(5, 2)
    f = fuse_features(a, b)
    assert f.shape == (5, 6)
    torch.testing.assert_close(f[:, :4].norm(dim=1), torch.ones(5)); torch.testing.assert_close(f[:, 4:].norm(dim=1), torch.ones(5))
    with pytest.raises(ValueError, match='at least one'): fuse_features()
    with pytest.raises(ValueError, match='different numbers'): fuse_features(a, b[:3])
    with pytest.raises(ValueError, match=r'\[N, d\]'): fuse_features(a, torch.rand(5))


def test_to_device_on_cpu():
    net = small_cnn(4)
    assert to_device(net) is net and net[0][0].weight.is_contiguous()
    cl = to_device(small_cnn(4), 'cpu', channels_last=True)
    w = cl[1][0].weight                               # [16, 16, 3, 3]: the two layouts differ
    assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    x = torch.rand(2, 1, 16, 16)
    ref = small_cnn(4); ref.load_state_dict(cl.state_dict())
    torch.testing.assert_close(cl(x), ref(x))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='CUDA is not available'): to_device(small_cnn(4), 'cuda')


def test_gradual_unfreeze_in_explicit_stages():
    "Stages of several epochs: one record per epoch with its stage; the best stage end is restored; stages and epochs exclude each other."
    set_seed(0)
    x, y = digits_like()
    net = small_cnn(4)
    h = gradual_unfreeze(net, tensor_loader(x, y, bs=10, shuffle=True), tensor_loader(x, y, bs=40), stages=(-1, 3, 0),
                         epochs_per_stage=2, lr=1e-2, lowest_lr=1e-3)
    assert [r['stage'] for r in h.records] == [1, 1, 2, 2, 3, 3] and [r['epoch'] for r in h.records] == [1, 2, 3, 4, 5, 6]
    assert h.best_epoch in (1, 3, 5)                                  # a stage's last epoch
    with pytest.raises(ValueError, match='not both'): gradual_unfreeze(net, tensor_loader(x, y), stages=(0,), epochs=2)
    with pytest.raises(ValueError, match='freeze more groups'): gradual_unfreeze(net, tensor_loader(x, y), stages=(0, 3))
    with pytest.raises(ValueError, match='stage n=99'): gradual_unfreeze(net, tensor_loader(x, y), stages=(99,))
    with pytest.raises(ValueError, match='empty'): gradual_unfreeze(net, tensor_loader(x, y), stages=())
    with pytest.raises(ValueError, match='epochs_per_stage=0'): gradual_unfreeze(net, tensor_loader(x, y), stages=(0,), epochs_per_stage=0)


def test_old_gradual_unfreezing_fit_is_the_same_run():
    "The old name, for one release: the same call, the same weights, and a DeprecationWarning naming gradual_unfreeze."
    import tltutor.finetune as ft
    x, y = digits_like()
    out = []
    for old in (False, True):
        set_seed(1); net = small_cnn(4)
        if old:
            with pytest.warns(DeprecationWarning, match='tltutor.finetune.gradual_unfreeze'): f = ft.gradual_unfreezing_fit
            f(net, tensor_loader(x, y, bs=10, shuffle=True), None, 2, 3e-3, step=2)   # the old positional order
        else: gradual_unfreeze(net, tensor_loader(x, y, bs=10, shuffle=True), None, epochs=2, lr=3e-3, step=2)
        out.append(net[-1].weight.detach().clone())
    assert torch.equal(*out)
