import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Small models gain nothing from threads; one thread keeps the tests steady on a shared machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
