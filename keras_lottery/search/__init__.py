"""Room `search`: a ticket search from a `SearchConfig` to a run directory (`apps.search`).

    config         SearchConfig (the shared settings and every method's), ConfigError
    settings       the settings every search shares, with their help and checks
    runner         LotteryRunner, run: the loop over the steps
    steps          SearchRound, DenseBaseline, TicketFromNextRound, RetrainTicket; plan
    state          SearchState (what the steps share) and open_search (data, model, resume)
    trainer        PhaseTrainer: fit from the last checkpoint, evaluate, log
    model_setup    the model, optimizer and compile settings of a search
    run_directory  RunDirectory: results.json, tickets, state, the lock
    checkpoints    epoch checkpoints a kill cannot corrupt
    distribute     tf.distribute strategies (--distribute)
    tensorboard    the summary run and the HParams of a search
    run_tickets    load_run: a finished round's ticket back from a run directory

May import: every room below it (`layers`, `methods`, `tickets`, `callbacks`, `models`,
`optimizers`, `data`, `compat`, `io_utils`).
"""

from keras_lottery.search.config import ConfigError, SearchConfig
from keras_lottery.search.run_directory import RESULTS_FILE, RunExistsError, RunLockedError
from keras_lottery.search.run_tickets import RunTicket, load_run
from keras_lottery.search.runner import LotteryRunner, run
from keras_lottery.search.steps import EmptyTicket

__all__ = ["ConfigError", "EmptyTicket", "LotteryRunner", "RESULTS_FILE", "RunExistsError",
           "RunLockedError", "RunTicket", "SearchConfig", "load_run", "run"]
