"""Margin heads: exact logits on hand examples, the adaptive scale, the registry, learning a toy task."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from networks.margin_heads import AdaCos, ArcFace, SubclusterAdaCos, get_head


def _unit_centres(head, vectors):
    with torch.no_grad():
        head.centres.copy_(torch.tensor(vectors, dtype=torch.float32))


def test_arcface_adds_the_margin_to_the_true_class_only():
    head = ArcFace(2, 2, margin=0.5, scale=10.0)
    _unit_centres(head, [[1.0, 0.0], [0.0, 1.0]])
    theta = 0.3
    x = torch.tensor([[math.cos(theta), math.sin(theta)]]) * 7.0  # the norm does not matter
    loss, logits = head(x, torch.tensor([0]))
    assert logits[0].tolist() == pytest.approx([10 * math.cos(theta), 10 * math.sin(theta)], abs=1e-5)
    expected = -F.log_softmax(torch.tensor([10 * math.cos(theta + 0.5), 10 * math.sin(theta)]), dim=0)[0]
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)


def test_arcface_keeps_decreasing_beyond_pi_minus_margin():
    head = ArcFace(3, 2, margin=0.5, scale=1.0)
    _unit_centres(head, [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # the other class is orthogonal to every x
    angles = torch.tensor([2.5, 2.8, 3.1])  # pi - 0.5 = 2.64 lies between the first two
    x = torch.stack([torch.cos(angles), torch.sin(angles), torch.zeros(3)], dim=1)
    losses, _ = head(x, torch.zeros(3, dtype=torch.long))
    assert losses[0] < losses[1] < losses[2]


def test_adacos_starts_at_sqrt2_log_c_minus_1_and_adapts_in_training():
    head = AdaCos(4, 5)
    assert head.scale.item() == pytest.approx(math.sqrt(2) * math.log(4))
    _unit_centres(head, torch.eye(5, 4).tolist())  # class 4 has the zero vector: cosine 0 everywhere
    x = torch.tensor([[1.0, 0.2, 0.0, 0.0], [0.1, 1.0, 0.0, 0.0]])
    labels = torch.tensor([0, 1])
    cos = F.normalize(x, dim=1) @ F.normalize(head.centres, dim=1).T
    s = head.scale.item()
    others = torch.where(F.one_hot(labels, 5).bool(), torch.zeros_like(cos), torch.exp(s * cos)).sum(1)
    theta = torch.acos(cos[torch.arange(2), labels])
    expected = math.log(others.mean().item()) / math.cos(min(math.pi / 4, theta.median().item()))
    head.eval()
    head(x, labels)
    assert head.scale.item() == pytest.approx(s)  # evaluation never changes the scale
    head.train()
    loss, logits = head(x, labels)
    assert head.scale.item() == pytest.approx(expected, rel=1e-5)
    assert torch.allclose(logits, expected * cos, atol=1e-4) and loss.shape == (2,)


def test_subcluster_adacos_sums_the_probabilities_of_a_class_centres():
    head = SubclusterAdaCos(3, n_classes=2, subclusters=3)
    assert head.centres.shape == (6, 3)
    assert head.scale.item() == pytest.approx(math.sqrt(2) * math.log(5))
    x = torch.randn(4, 3)
    labels = torch.tensor([0, 1, 1, 0])
    head.eval()
    loss, logits = head(x, labels)
    probabilities = torch.softmax(head.scale * head.cosine(x), dim=1).view(4, 2, 3).sum(dim=2)
    assert torch.allclose(torch.softmax(logits, dim=1), probabilities, atol=1e-6)
    assert torch.allclose(loss, -probabilities[torch.arange(4), labels].log(), atol=1e-5)


@pytest.mark.parametrize("name", ["adacos", "arcface", "subcluster_adacos"])
def test_each_head_learns_separable_classes(name):
    torch.manual_seed(0)
    centres = torch.randn(4, 16) * 3
    labels = torch.arange(4).repeat_interleave(50)
    x = centres[labels] + torch.randn(200, 16)
    head = get_head(name, 8, 4, subclusters=2, margin=0.3, scale=16.0)
    projection = torch.nn.Linear(16, 8)
    optimiser = torch.optim.Adam(list(head.parameters()) + list(projection.parameters()), lr=0.02)
    head.train()
    for _ in range(150):
        loss, _ = head(projection(x), labels)
        optimiser.zero_grad()
        loss.mean().backward()
        optimiser.step()
    head.eval()
    _, logits = head(projection(x))
    # Measured 1.0 for every head with torch seeds 0-9; chance is 0.25.
    assert (logits.argmax(dim=1) == labels).float().mean() > 0.95


def test_registry_lists_valid_heads_and_rejects_one_class():
    with pytest.raises(KeyError, match="unknown head 'cosface'; valid: adacos, arcface, subcluster_adacos"):
        get_head("cosface", 8, 3)
    with pytest.raises(ValueError, match="at least two classes"):
        get_head("adacos", 8, 1)


@pytest.mark.parametrize("name", ["adacos", "arcface", "subcluster_adacos"])
def test_class_weights_of_mixed_clips_give_the_mixed_loss(name):
    torch.manual_seed(0)
    head = get_head(name, 4, 3, subclusters=2, margin=0.3, scale=8.0)
    x = torch.randn(2, 4)
    a, b = torch.tensor([0, 2]), torch.tensor([1, 1])
    one_hot = F.one_hot(a, 3).float()
    twin = copy.deepcopy(head)
    head.train(), twin.train()
    by_index, _ = head(x, a)
    by_weight, _ = twin(x, one_hot)  # the same targets as weights: the same loss and the same adapted scale
    assert torch.allclose(by_weight, by_index, atol=1e-6)
    assert float(twin.scale) == pytest.approx(float(head.scale))
    head.eval()  # a fixed scale: the mixed loss is exactly the weighted sum for plain softmax heads
    mixed, _ = head(x, 0.7 * one_hot + 0.3 * F.one_hot(b, 3).float())
    if name != "arcface":
        assert torch.allclose(mixed, 0.7 * head(x, a)[0] + 0.3 * head(x, b)[0], atol=1e-5)
    else:  # the margin lowers both true logits: the loss exceeds the softmax loss without margin
        plain = F.cross_entropy(head(x)[1], 0.7 * one_hot + 0.3 * F.one_hot(b, 3).float(), reduction="none")
        assert torch.all(mixed > plain)
