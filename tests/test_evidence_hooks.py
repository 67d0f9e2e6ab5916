"""The measurement hooks the evidence rests on: the validation split, population statistics recomputed by
Algorithm 2, the all-units summary of the last hidden layer, [0, 1] inputs, and RunConfig's argument checks.

References are independent of the code under test: a plain batch-by-batch loop over torch's BatchNorm1d with
hooks, NumPy quantiles, the raw uint8 pixels, and the arithmetic of the split itself.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from bnlib import models
from bnlib import train as T
from bnlib.evaluate import calibrated, population_statistics, probe_stats
from bnlib.results import PERCENTILES, UNIT_QUANTILES

SMALL = T.RunConfig(sizes=(784, 12, 12, 10), norm="torch", steps=30, record_every=15, batch_size=20, lr=0.5,
                    probe_batch=50)


def _fake_data(n_train=400, n_test=100, seed=0) -> T.Data:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n_train + n_test, 784, generator=g)
    y = torch.randint(0, 10, (n_train + n_test,), generator=g)
    return T.Data(x[:n_train], y[:n_train], x[n_train:], y[n_train:], name="fake")


def _trained_bn_mlp(norm="torch", conv=False):
    torch.manual_seed(0)
    if conv:
        model = models.SigmoidCNN(2, 4, norm=norm, seed=0)
        x = torch.randn(240, 3, 32, 32)
    else:
        model = models.SigmoidMLP((784, 16, 16, 10), norm=norm, seed=0)
        x = torch.randn(240, 784)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model.train()
    for i in range(5):  # a few steps so that gamma, beta and the weights are no longer at their init
        loss = model(x[i * 40:(i + 1) * 40]).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, x


@pytest.mark.parametrize(("conv", "channels_last"), [(False, False), (True, False), (True, True)])
@pytest.mark.parametrize("norm", ["torch", "bnlib"])
def test_population_statistics_are_algorithm_2_of_a_batch_by_batch_loop(norm, conv, channels_last):
    model, x = _trained_bn_mlp(norm, conv)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # the engine stores images channels-last; the reference below reads the same values in NCHW order
    got = population_statistics(model, x.contiguous(memory_format=torch.channels_last) if channels_last else x, 40)
    # reference: the network in training mode, one mini-batch at a time, a hook reading each BN input
    ref_model = models.SigmoidCNN(2, 4, norm=norm, seed=0) if conv else models.SigmoidMLP((784, 16, 16, 10),
                                                                                           norm=norm, seed=0)
    ref_model.load_state_dict(before)
    ref_model.train()
    seen = {i: [] for i in range(len(models.bn_layers(ref_model)))}
    for i, bn in enumerate(models.bn_layers(ref_model)):
        bn.register_forward_hook(lambda _m, a, _o, i=i: seen[i].append(a[0].detach().double()))
    with torch.no_grad():
        for k in range(6):
            ref_model(x[k * 40:(k + 1) * 40])
    for i, (mu, var) in enumerate(got):
        zs = seen[i]
        dims = [0, 2, 3] if conv else [0]
        m = zs[0].numel() // zs[0].shape[1]
        mu_ref = torch.stack([z.mean(dims) for z in zs]).mean(0)
        var_ref = torch.stack([z.var(dims, unbiased=False) for z in zs]).mean(0) * m / (m - 1)
        torch.testing.assert_close(mu, mu_ref, rtol=1e-5, atol=1e-6)  # float32 network, two BN kernels
        torch.testing.assert_close(var, var_ref, rtol=1e-5, atol=1e-6)
    for k, v in model.state_dict().items():  # the network is left as it was
        assert torch.equal(v, before[k]), k


def test_calibrated_copy_holds_the_statistics_and_leaves_the_model_alone():
    model, x = _trained_bn_mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    twin = calibrated(model, x, 40)
    stats = population_statistics(model, x, 40)
    for bn, (mu, var) in zip(models.bn_layers(twin), stats, strict=True):
        torch.testing.assert_close(bn.running_mean, mu.float())
        torch.testing.assert_close(bn.running_var, var.float())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_population_statistics_refuse_networks_without_bn_and_short_inputs():
    model, x = _trained_bn_mlp()
    with pytest.raises(ValueError, match="batch_size"):
        population_statistics(model, x, 1)
    with pytest.raises(ValueError, match="at least one batch"):
        population_statistics(model, x[:10], 40)
    with pytest.raises(ValueError, match="BN layers"):
        population_statistics(models.SigmoidMLP((784, 8, 10), norm=None), x, 40)


def test_units_summary_is_quantiles_across_all_units_of_the_last_layer():
    model, x = _trained_bn_mlp()
    ps = probe_stats(model, x[:100], (0, 1, 2))
    with models.Probe(model) as probe:
        model.eval()
        with torch.no_grad():
            model(x[:100])
    z = probe.inputs[probe.layers[-1]].double().numpy()  # (examples, units)
    per_unit = np.percentile(z, PERCENTILES, axis=0)  # (3, units)
    ref = np.percentile(per_unit, UNIT_QUANTILES, axis=1).T  # (3, 5)
    np.testing.assert_allclose(np.array(ps["units"]), ref, rtol=1e-9, atol=1e-9)


def test_validation_split_is_the_last_images_and_never_trained_on():
    data = _fake_data()
    cfg = replace(SMALL, validation=100, train_subset=200)
    xtr, ytr, xval, yval = T.split(cfg, data)
    assert torch.equal(xtr, data.x_train[:200]) and torch.equal(xval, data.x_train[300:])
    assert torch.equal(yval, data.y_train[300:])
    # the sampler only ever draws indices of the training part
    s = T.BatchSampler(ytr, 20, "iid", 0)
    drawn = torch.cat([s.next() for _ in range(50)])
    assert int(drawn.max()) < 200


def test_a_run_records_validation_and_population_scores():
    data = _fake_data()
    out = T.train(replace(SMALL, validation=100, calibration=200), data=data)
    c, s = out["curves"], out["summary"]
    assert len(c["val_acc"]) == len(c["step"]) == len(c["test_acc_pop"]) == len(c["val_acc_pop"]) == 3
    assert np.array(c["units"]).shape == (3, 3, 5)
    # the final population score is the eval-mode score of the network calibrated on the whole training split
    twin = calibrated(out["model"], data.x_train[:300], SMALL.batch_size)
    twin.eval()
    with torch.no_grad():
        acc = (twin(data.x_test).argmax(1) == data.y_test).double().mean().item()
    assert s["final_test_acc_pop"] == pytest.approx(acc)
    # without BN, the population score is the eval-mode score
    plain = T.train(replace(SMALL, norm=None, validation=100, calibration=200), data=data)
    assert plain["curves"]["test_acc_pop"] == plain["curves"]["test_acc"]


def test_unit_inputs_are_the_raw_pixels_over_255():
    from bnlib import data as bdata
    (xtr, _), _ = bdata.load_mnist(download=False)
    got = T.load_data("mnist", True, "unit").x_train[:50]
    np.testing.assert_array_equal(got.numpy(), xtr[:50].reshape(50, -1).astype(np.float32) / np.float32(255))


test_unit_inputs_are_the_raw_pixels_over_255 = pytest.mark.data("mnist")(test_unit_inputs_are_the_raw_pixels_over_255)

BAD_CONFIGS = [
    ("train_subset", -5, ValueError), ("train_subset", 2.5, TypeError), ("lr", "0.1", TypeError),
    ("lr", 0.0, ValueError), ("lr", float("nan"), ValueError), ("lr_decay", -1.0, ValueError),
    ("lr_decay", 0.0, ValueError), ("lr_decay", 1.5, ValueError), ("init_sigma", float("nan"), ValueError),
    ("init_sigma", -0.1, ValueError), ("momentum", 1.0, ValueError), ("momentum", -0.5, ValueError),
    ("weight_decay", -1e-4, ValueError), ("dropout", 1.0, ValueError), ("dropout", "0.3", TypeError),
    ("batch_size", 0, ValueError), ("batch_size", True, TypeError), ("steps", 0, ValueError),
    ("record_every", -1, ValueError), ("probe_batch", 0, ValueError), ("probe_units", (), ValueError),
    ("probe_units", (-1,), ValueError), ("sizes", (784,), ValueError), ("sizes", (784, 0, 10), ValueError),
    ("batch_sampler", "classes:0", ValueError), ("batch_sampler", "classes:x", ValueError),
    ("batch_sampler", "classes:11", ValueError), ("batch_sampler", "random", ValueError),
    ("dataset", "imagenet", ValueError), ("model", "resnet", ValueError), ("norm", "batch", ValueError),
    ("activation", "gelu", ValueError), ("init", "orthogonal", ValueError), ("optimizer", "rmsprop", ValueError),
    ("norm_position", "middle", ValueError), ("inputs", "raw", ValueError), ("validation", -1, ValueError),
    ("calibration", -1, ValueError), ("seed", -1, ValueError), ("recorders", "ics", TypeError),
    ("recorders", ("nope",), ValueError), ("analyses", ("nope",), ValueError), ("test_subset", -1, ValueError),
    ("lr_decay_every", -2, ValueError),
]


@pytest.mark.parametrize(("field", "value", "exc"), BAD_CONFIGS, ids=[f"{f}={v!r}" for f, v, _ in BAD_CONFIGS])
def test_bad_run_config_is_one_sentence_naming_the_field(field, value, exc):
    with pytest.raises(exc) as err:
        T.RunConfig(**{field: value})
    msg = str(err.value)
    assert field in msg and msg.count("\n") == 0 and msg.endswith(".")


def test_model_and_dataset_that_do_not_fit_are_refused():
    with pytest.raises(ValueError, match="model='cnn'"):
        T.train(replace(SMALL, model="cnn", depth=2, width=4), data=_fake_data())
    with pytest.raises(ValueError, match="sizes\\[0\\]"):
        T.train(replace(SMALL, sizes=(3072, 10, 10)), data=_fake_data())
    with pytest.raises(ValueError, match="validation"):
        T.split(replace(SMALL, validation=400), _fake_data())
    with pytest.raises(ValueError, match="calibration"):
        T.split(replace(SMALL, validation=100, calibration=350), _fake_data())


def test_numpy_scalars_are_accepted_where_numbers_are():
    cfg = T.RunConfig(lr=np.float32(0.5), batch_size=np.int64(20), steps=np.int64(3), init_sigma=np.float64(0.1))
    assert cfg.batch_size == 20
