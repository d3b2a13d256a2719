"""Dissociation autoencoders: pixel-shuffle decoder, variance attention, deep K-means, training."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from contract_data import contract_inputs
from stgraph.models.dissociation import DissociationAE, choose_alpha, kmeans
from stgraph.nn.autoencoder_layers import DeepKMeans, PixelShuffleUp, VarianceAttention
from stgraph.nn.pixel_autoencoders import DissociationNet

TINY = DissociationAE.contract_params()


def test_pixel_shuffle_decoder_doubles_the_resolution():
    up = PixelShuffleUp(8, 4)
    assert up(torch.randn(2, 8, 5, 7)).shape == (2, 4, 10, 14)
    net = DissociationNet(n_input=4, width=2, n_clusters=3)
    out = net(torch.rand(2, 3, 24, 24), torch.rand(2, 12, 24, 24))
    assert out["recon"].shape == (2, 3, 24, 24) == out["diff"].shape == out["prediction"].shape
    assert out["r"].shape == (2, 16, 3, 3)
    assert float(out["r"].detach().min()) >= 0 and float(out["r"].detach().max()) <= 1


def test_variance_attention_is_identity_on_uniform_variance_and_unit_norm():
    att = VarianceAttention(4)
    z = torch.randn(2, 4, 6, 6)
    a = att.attention(z)
    assert a.shape == (2, 1, 6, 6)
    torch.testing.assert_close(a.flatten(1).norm(dim=1), torch.ones(2))
    with torch.no_grad():
        att.embed.weight.zero_()
        att.embed.bias.zero_()
    torch.testing.assert_close(att(z), z)


def test_deep_kmeans_soft_assignments_sum_to_one():
    km = DeepKMeans(5, 3)
    with torch.no_grad():
        km.centers.copy_(torch.randn(5, 3))
    r = torch.randn(20, 3)
    a = km.assignments(r, alpha=2.0)
    torch.testing.assert_close(a.sum(dim=1), torch.ones(20))
    d = km.distance(r, alpha=2.0)
    assert d.shape == (20,) and torch.all(d >= 0)
    assert km.distance_map(torch.randn(2, 3, 4, 4), 2.0).shape == (2, 4, 4)


def test_kmeans_and_alpha_rule():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(50, 2, generator=g) * 0.1 + torch.tensor(c, dtype=torch.float32) for c in ([0, 0], [5, 5], [0, 5])])
    centres = kmeans(x, 3, g)
    assert torch.cdist(centres, torch.tensor([[0., 0.], [5., 5.], [0., 5.]])).min(dim=0).values.max() < 0.5
    alpha = choose_alpha(torch.cdist(x, centres), target=0.5)
    p = torch.softmax(-alpha * torch.cdist(x, centres), dim=1)
    entropy = -(p * p.clamp_min(1e-12).log()).sum(1).mean().item()
    assert entropy == pytest.approx(0.5 * math.log(3), abs=0.02)


def test_training_reduces_the_loss_and_chooses_lambda_and_alpha():
    train, _, test = contract_inputs("frames", 0)
    model = DissociationAE(**{**TINY, "pretrain_epochs": 3, "epochs": 1}).fit(train)
    assert model.train_losses_[2] < model.train_losses_[0]
    assert model.alpha_ > 0 and model.lambda_r_ > 0
    table = model.score(test, video="t")
    assert np.all(table["score"] >= 0)  # D_u * err, higher = more abnormal
    assert table.pixel_maps["t"].maps.shape[1:] == (16, 16)


def test_given_lambda_and_alpha_are_kept():
    train, _, _ = contract_inputs("frames", 0)
    fixed = DissociationAE(**{**TINY, "lambda_r": 0.5, "alpha": 3.0}).fit(train)
    assert (fixed.lambda_r_, fixed.alpha_) == (0.5, 3.0)


def test_bad_lambda_raises():
    train, _, _ = contract_inputs("frames", 0)
    with pytest.raises(ValueError, match="lambda_r"):
        DissociationAE(**{**TINY, "lambda_r": -1.0}).fit(train)
