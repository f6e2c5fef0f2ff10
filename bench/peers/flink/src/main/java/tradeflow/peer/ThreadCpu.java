// ThreadCpu - where the JVM's CPU goes, by thread: a daemon thread samples
// every thread's CPU time (ThreadMXBean) twice a second and keeps the last
// value seen per thread, so that threads that have ended (Flink's task
// threads end with the job) are still counted (up to 0.5 s of their last
// stretch may be missed). report() groups them by name with the subtask
// index and attempt removed ("GroupAggregate[12] (2/2)#0" -> "GroupAggregate[12]").
// Owns nothing outside the JVM; no allocation escapes to callers but the
// returned String.
package tradeflow.peer;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.lang.management.ThreadMXBean;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

final class ThreadCpu {
    private final ThreadMXBean mx = ManagementFactory.getThreadMXBean();
    private final Map<Long, String> names = new ConcurrentHashMap<>();
    private final Map<Long, Long> cpu = new ConcurrentHashMap<>();

    void start() {
        if (!mx.isThreadCpuTimeSupported()) {
            return;
        }
        mx.setThreadCpuTimeEnabled(true);
        Thread t = new Thread(() -> {
            while (true) {
                sample();
                try {
                    Thread.sleep(500);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "tradeflow-thread-cpu");
        t.setDaemon(true);
        t.start();
    }

    synchronized void sample() {
        for (ThreadInfo ti : mx.getThreadInfo(mx.getAllThreadIds())) {
            if (ti == null) {
                continue;
            }
            long c = mx.getThreadCpuTime(ti.getThreadId());
            if (c >= 0) {
                names.put(ti.getThreadId(), ti.getThreadName());
                cpu.put(ti.getThreadId(), c);
            }
        }
    }

    /** Lines "seconds  name" of the n busiest thread groups, busiest first. */
    synchronized String report(int n) {
        sample();
        Map<String, Long> by = new TreeMap<>();
        for (Map.Entry<Long, Long> e : cpu.entrySet()) {
            String name = names.get(e.getKey())
                    .replaceAll(" \\(\\d+/\\d+\\)(#\\d+)?$", "")
                    .replaceAll("-\\d+$", "-N");
            if (name.length() > 110) {
                name = name.substring(0, 107) + "...";
            }
            by.merge(name, e.getValue(), Long::sum);
        }
        List<Map.Entry<String, Long>> l = new ArrayList<>(by.entrySet());
        l.sort((a, b) -> Long.compare(b.getValue(), a.getValue()));
        StringBuilder sb = new StringBuilder();
        long total = 0;
        for (Map.Entry<String, Long> e : l) {
            total += e.getValue();
        }
        sb.append(String.format("%8.2f s  all threads sampled%n", total / 1e9));
        for (int i = 0; i < Math.min(n, l.size()); i++) {
            sb.append(String.format("%8.2f s  %s%n", l.get(i).getValue() / 1e9, l.get(i).getKey()));
        }
        return sb.toString();
    }
}
