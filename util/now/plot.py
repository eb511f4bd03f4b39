"""The cumulative error plot: for each run, the percentage of scan vertices whose error is
at most x millimetres (the figure of the RingNet paper and the NoW website)."""
import io

from util.now.metrics import cumulative_curve

X_MAX_MM = 8.0  # the official plot's range


def cumulative_error_png(curves, title=None):
    """curves [(label, distances (N,) in mm)] -> PNG bytes of their cumulative error plot
    (matplotlib on its Agg backend: no display needed)."""
    # a Figure on an Agg canvas of its own: no pyplot, no global backend switch
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.5), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    for label, distances in curves:
        x, percent = cumulative_curve(distances)
        if len(x):
            # start at 0% and run on flat to the edge, as a step curve
            ax.step([0.0, *x, max(X_MAX_MM, float(x[-1]))], [0.0, *percent, 100.0],
                    where='post', label=label, linewidth=1.5)
    ax.set_xlim(0.0, X_MAX_MM)
    ax.set_ylim(0.0, 100.0)
    ax.set_xlabel('Error [mm]')
    ax.set_ylabel('Percentage of scan vertices')
    ax.grid(True, alpha=0.3)
    if title:
        ax.set_title(title)
    if curves:
        ax.legend(loc='lower right')
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', bbox_inches='tight')
    return buffer.getvalue()
