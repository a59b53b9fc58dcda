import { APP_CONFIG, type AppConfig } from '@app/config';
import { createRedis, type JobEventMessage, jobEventsChannel, type RedisClient } from '@app/queue';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';

type Listener = (event: JobEventMessage) => void;

/**
 * Live job events for streams and waiters, over one Redis subscriber connection per API
 * instance: a job's channel is subscribed while someone watches it. Nothing blocks the event loop;
 * callers also read the events table, so a message lost here delays, never loses, an event.
 */
@Injectable()
export class JobWatcher implements OnApplicationShutdown {
  private readonly subscriber: RedisClient;
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {
    this.subscriber = createRedis(config, 'subscriber', 'api-jobs');
    this.subscriber.on('message', (channel: string, message: string) => {
      const set = this.listeners.get(channel);
      if (!set) return;
      const event = JSON.parse(message) as JobEventMessage;
      for (const l of set) l(event);
    });
  }

  /** Calls `listener` with each event of the job published from now on; returns the way to stop. */
  async watch(jobId: string, listener: Listener): Promise<() => void> {
    const channel = jobEventsChannel(this.config, jobId);
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
      await this.subscriber.subscribe(channel).catch(() => undefined);
    }
    set.add(listener);
    return () => {
      set!.delete(listener);
      if (set!.size === 0 && this.listeners.get(channel) === set) {
        this.listeners.delete(channel);
        void this.subscriber.unsubscribe(channel).catch(() => undefined);
      }
    };
  }

  onApplicationShutdown(): void {
    this.subscriber.disconnect();
  }
}
